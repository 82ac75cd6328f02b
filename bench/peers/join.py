# The provider documentation's JSONL-to-CSV script (ref/dashscope-batch-api.txt, "Utility scripts"),
# extended with the dict join a user writes to put results back beside the source rows: every result
# line into a dict by custom_id, then the source CSV in order with the same result columns batchpipe
# writes (status, content, error_code, error_message, prompt_tokens, completion_tokens). The custom_id
# of a row is row-<id>.
#
# One fix so it does the same work: the documented get() tests `key in obj`, which for a list asks
# whether the value 0 is an element, so get(r, [..., "choices", 0, ...]) never found choices[0] and
# every content came out empty. Here a list is indexed by position.
#
# Usage: python3 join.py source.csv out.csv results.jsonl [errors.jsonl ...]
# Prints rows and peak RSS as JSON.
import csv, json, resource, sys

src, dst = sys.argv[1:3]
result_files = sys.argv[3:]

columns = ["status", "content", "error_code", "error_message", "prompt_tokens", "completion_tokens"]

def get(obj, path):
    for key in path:
        if isinstance(obj, list):
            obj = obj[key] if isinstance(key, int) and -len(obj) <= key < len(obj) else None
        else:
            obj = obj[key] if obj and key in obj else None
    return obj

results = {}
for path in result_files:
    with open(path, encoding="utf-8") as fin:
        for line in fin:
            if not line.strip():
                continue
            r = json.loads(line)
            error = r.get("error") or get(r, ["response", "body", "error"])
            if error:
                if isinstance(error, str):
                    error = {"message": error}
                row = ["failed", None, error.get("code"), error.get("message"), None, None]
            else:
                usage = get(r, ["response", "body", "usage"]) or {}
                row = [
                    "ok",
                    get(r, ["response", "body", "choices", 0, "message", "content"]),
                    None,
                    None,
                    usage.get("prompt_tokens"),
                    usage.get("completion_tokens"),
                ]
            results[r.get("custom_id")] = row

missing = ["missing", None, "BP_RESULT_MISSING", "no output or error line came back", None, None]
rows = 0
with open(src, newline="", encoding="utf-8") as fin, open(dst, "w", newline="", encoding="utf-8") as fout:
    reader = csv.reader(fin)
    writer = csv.writer(fout, lineterminator="\n")
    header = next(reader)
    key = header.index("id")
    writer.writerow(header + columns)
    for row in reader:
        writer.writerow(row + results.get("row-" + row[key], missing))
        rows += 1

print(json.dumps({"rows": rows, "maxRssKb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
