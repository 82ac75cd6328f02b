import type { Connection } from '../providers/connection.js';
import type { ProviderProfile } from '../providers/profile.js';
import type { PreparedSummary } from '../run/sharder.js';
import { stageRequests } from '../run/start-run.js';
import { requestSource } from '../sources/request-source.js';
import { validateRequests } from '../transforms/validate-requests.js';

/**
 * Checks a file of request lines as the provider would (requestSource -> validateRequests) and cuts
 * its good lines into shards of a new staging directory under `runsDir`, ready to become a run; bad
 * lines go to its rejections.jsonl. What `batchpipe submit` does with a .jsonl file, and what a re-ask
 * round does with the requests it wrote.
 */
export function stageRequestFile(
  file: string,
  runsDir: string,
  connection: Connection,
  profile: ProviderProfile = connection.profile,
): Promise<{ dir: string; summary: PreparedSummary }> {
  const lines = requestSource(file).compose(validateRequests({ provider: profile }));
  return stageRequests(lines, runsDir, connection);
}
