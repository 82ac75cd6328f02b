# The provider documentation's CSV-to-JSONL converter (ref/dashscope-batch-api.txt, "Utility scripts"),
# doing the same work as the batchpipe run it is compared with: skip the header, id from column 0, the
# same system and user messages, json.dumps(ensure_ascii=False). Prints rows and peak RSS as JSON.
import csv, json, resource, sys

src, dst, model, system, prefix = sys.argv[1:6]

def build_messages(content):
    return [{"role": "system", "content": system}, {"role": "user", "content": prefix + content}]

rows = 0
with open(src, newline="", encoding="utf-8") as fin, open(dst, "w", encoding="utf-8") as fout:
    reader = csv.reader(fin)
    next(reader)
    for row in reader:
        request = {
            "custom_id": row[0],
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "messages": build_messages(row[1])},
        }
        fout.write(json.dumps(request, ensure_ascii=False) + "\n")
        rows += 1

print(json.dumps({"rows": rows, "maxRssKb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
