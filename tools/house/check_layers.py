#!/usr/bin/env python3
"""The house rules of docs/architecture.md, checked on the tree: every include points down the
layers (or stays in its folder), no source file runs over MAX_LINES, no folder of src/bistro holds
over MAX_SHARE of its lines. Prints each breach and exits 1 if there is any."""
import pathlib
import re
import sys

# From the ground up. A folder may include its own files and those of lower layers only; folders
# that share a layer (the roles) may not include each other.
LAYERS = [
    ["core"],
    ["runtime"],
    ["identity"],
    ["drand"],
    ["data"],
    ["storage"],
    ["substrate"],
    ["chain"],
    ["model"],
    ["compress"],
    ["train"],
    ["cheats"],
    ["protocol"],
    ["miner", "validator", "v1"],
    ["localnet"],
    ["ops"],
    ["apps"],
]
MAX_LINES = 650
MAX_SHARE = 0.21

RANK = {folder: i for i, layer in enumerate(LAYERS) for folder in layer}
INCLUDE = re.compile(r'^\s*#\s*include\s+"bistro/([a-z0-9_]+)/', re.M)


def main(root: pathlib.Path) -> int:
    src = root / "src" / "bistro"
    files = [p for p in sorted(src.rglob("*")) if p.suffix in (".hpp", ".cpp")]
    files += sorted((root / "apps").rglob("*.[ch]pp"))
    breaches = []
    lines_by_folder = {}
    total = 0
    for f in files:
        rel = f.relative_to(root)
        folder = "apps" if rel.parts[0] == "apps" else (rel.parts[2] if len(rel.parts) > 3 else None)
        text = f.read_text()
        n = text.count("\n")
        if n > MAX_LINES:
            breaches.append(f"{rel}: {n} lines (at most {MAX_LINES})")
        if folder is None:  # src/bistro/torch_pch.hpp
            continue
        if folder not in RANK:
            breaches.append(f"{rel}: folder '{folder}' is in no layer (tools/house/check_layers.py)")
            continue
        if folder != "apps":
            lines_by_folder[folder] = lines_by_folder.get(folder, 0) + n
            total += n
        for target in INCLUDE.findall(text):
            if target == folder:
                continue
            if target not in RANK:
                breaches.append(f"{rel}: includes from '{target}', which is in no layer")
            elif RANK[target] >= RANK[folder]:
                breaches.append(f"{rel}: includes bistro/{target}/ ({folder} may only include "
                                "from the layers below it)")
    for folder, n in sorted(lines_by_folder.items()):
        if n > MAX_SHARE * total:
            breaches.append(f"src/bistro/{folder}/: {n} of {total} lines "
                            f"({100 * n / total:.1f}%, at most {100 * MAX_SHARE:.0f}%)")
    for b in breaches:
        print(b)
    print(f"house rules: {len(files)} files, {len(breaches)} breaches")
    return 1 if breaches else 0


if __name__ == "__main__":
    sys.exit(main(pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()))
