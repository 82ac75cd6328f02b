import { serveJobs } from '../../internal/worker-pool.js';
import { joinShare } from './partition-join.js';

// A thread of HashJoin's step 3: joins the share of the partitions it is sent.
serveJobs(joinShare);
