#!/usr/bin/env python3
"""Build step: docs/openapi.yaml -> a C source holding the document as
compact JSON (api_openapi_json, served at GET /openapi.json), so the server
reads no file at run time.
usage: openapi_to_c.py openapi.yaml out.c"""
import json
import sys

import yaml


def main():
    src, out = sys.argv[1], sys.argv[2]
    with open(src) as f:
        doc = yaml.safe_load(f)
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=True)
    lines = []
    for i in range(0, len(text), 96):
        chunk = text[i:i + 96].replace("\\", "\\\\").replace('"', '\\"')
        lines.append('  "%s"' % chunk)
    with open(out + ".tmp", "w") as f:
        f.write("/* Generated from docs/openapi.yaml by docs/openapi_to_c.py: do not edit. */\n")
        f.write("#include <stddef.h>\n\n")
        f.write("const char api_openapi_json[] =\n%s;\n" % "\n".join(lines))
        f.write("const size_t api_openapi_json_len = sizeof(api_openapi_json) - 1;\n")
    import os
    os.replace(out + ".tmp", out)


if __name__ == "__main__":
    main()
