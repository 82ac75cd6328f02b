import { serveJobs } from '../internal/worker-pool.js';
import { countRequests } from './count-requests.js';

// A thread of CountPool: counts each part of a request file it is sent.
serveJobs(countRequests);
