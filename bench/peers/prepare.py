# The provider documentation's CSV-to-JSONL converter (ref/dashscope-batch-api.txt, "Utility scripts"),
# doing the same work as the batchpipe run it is compared with: the header skipped, custom_id row-<id>,
# the same system message and the user message "Title: <title>\nReview: <review>",
# json.dumps(ensure_ascii=False). Prints rows and peak RSS as JSON.
# Usage: python3 prepare.py table.csv out.jsonl model system
import csv, json, resource, sys

src, dst, model, system = sys.argv[1:5]

rows = 0
with open(src, newline="", encoding="utf-8") as fin, open(dst, "w", encoding="utf-8") as fout:
    reader = csv.reader(fin)
    header = next(reader)
    id_at, title_at, review_at = header.index("id"), header.index("title"), header.index("review")
    for row in reader:
        request = {
            "custom_id": "row-" + row[id_at],
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": model,
                "messages": [
                    {"role": "system", "content": system},
                    {"role": "user", "content": "Title: " + row[title_at] + "\nReview: " + row[review_at]},
                ],
            },
        }
        fout.write(json.dumps(request, ensure_ascii=False) + "\n")
        rows += 1

print(json.dumps({"rows": rows, "maxRssKb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
