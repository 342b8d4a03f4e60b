#!/usr/bin/env python3
"""Turn the filter benchmark's edits (AbuseFilter variables) into check-API actions.

Usage: make_actions.py EDITS_DIR OUT_DIR

For each edit-*.json that bench/edits/gen.py wrote, writes OUT_DIR/action-*.json: the body
MediaWiki's extension would POST to /v1/check for that edit (old and new wikitext, the
user's and the page's facts). wikiguard then computes the diff, the links and every other
variable itself, so the benchmark measures the diff too.
"""

import json
import os
import sys
import time


def main():
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    for name in sorted(os.listdir(src)):
        if not (name.startswith("edit-") and name.endswith(".json")):
            continue
        with open(os.path.join(src, name), encoding="utf-8") as f:
            v = json.load(f)
        action = {
            "action": "edit",
            "user": {
                "name": v["user_name"],
                "id": 90210,
                "editcount": v["user_editcount"],
                "groups": v["user_groups"],
                "rights": ["edit", "createpage"],
                # user_age in the edit is two days and an hour before its timestamp.
                "registration": time.strftime(
                    "%Y%m%d%H%M%S", time.gmtime(int(v["timestamp"]) - int(v["user_age"]))
                ),
                "emailconfirmed": False,
                "temporary": False,
            },
            "page": {"id": v["page_id"], "namespace": v["page_namespace"], "title": v["page_title"]},
            "old_wikitext": v["old_wikitext"],
            "new_wikitext": v["new_wikitext"],
            "summary": v["summary"],
            "minor": False,
            "request": {"ip": "127.0.0.1", "user_agent": "wikiguard-bench"},
        }
        with open(os.path.join(out, name.replace("edit-", "action-")), "w", encoding="utf-8") as f:
            json.dump(action, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
