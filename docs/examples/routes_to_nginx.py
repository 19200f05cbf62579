"""Example adapter: the registry's routes file -> an nginx traffic split per model.

    python docs/examples/routes_to_nginx.py routes.json > /etc/nginx/conf.d/models.conf
    nginx -s reload

For each model it writes a `split_clients` block that sends `canary_share` of requests to the
canary's upstream and the rest to production's, keyed on the request id (a client keeps its
side while the share stays the same), and one `mirror` line per shadow version (nginx copies
the request and ignores the mirror's answer, which is exactly what shadow means). It expects
upstreams named `<model>_<version>` (dots as underscores) defined elsewhere. Run it from the
routes file's watcher (inotify, a systemd path unit) or from the routes webhook's receiver,
after checking the signature (lifecycle.registry.routes.verify). Tested in
tests/test_routes.py.
"""

from __future__ import annotations

import json
import re
import sys


def upstream(model: str, version: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", f"{model}_{version}")


def nginx_config(state: dict) -> str:
    out = [f"# generated from the model registry, audit {state['audit_id']}; do not edit"]
    for model, m in sorted(state["models"].items()):
        if not m["production"]:
            continue
        var = f"$model_{upstream(model, '')}".rstrip("_")
        out.append(f'split_clients "$request_id" {var} {{')
        if m["canary"] and m["canary_share"] > 0:
            out.append(f"    {m['canary_share'] * 100:.2f}% {upstream(model, m['canary'])};")
        out.append(f"    * {upstream(model, m['production'])};")
        out.append("}")
        for shadow in m["shadow"]:
            out.append(f"# mirror /{model} to {upstream(model, shadow)} (shadow, answers ignored)")
            out.append(f"map $uri $mirror_{upstream(model, shadow)} {{ default "
                       f"{upstream(model, shadow)}; }}")  # fmt: skip
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as handle:
        sys.stdout.write(nginx_config(json.load(handle)))
