"""Prints the markdown table of docs/benchmarks.md from matrix.sh's reports."""
import json
import pathlib
import sys

out = pathlib.Path(sys.argv[1])
print("| store | nodes | Redis | strategy | baseline req/s | attempts/s (÷ baseline) "
      "| successful holds/s | sellout | winner p99 ms | loser p99 ms | errors | invariants |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for cell in sorted(out.iterdir()):
    if not cell.is_dir():
        continue
    try:
        base = json.loads((cell / "baseline.json").read_text())["baseline"]
        sale = json.loads((cell / "flash-sale.json").read_text())["flash_sale"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(f"| {cell.name} | failed: {error} |||||||||||")
        continue
    store, nodes, _, redis, strategy = cell.name.split("-")
    ceiling = base["requests_per_second"]
    attempts = sale["attempts_per_second"]
    sellout = f'{sale["sellout_seconds"]:.1f} s' if sale["sold_out"] else \
        f'not in {sale["seconds"]:.0f} s ({sale["places"] - sale["places_won"]} left)'
    errors = ", ".join(f"{k} {v}" for k, v in sale["errors"].items()) or "none"
    print(f"| {store} | {nodes[:-1]} | {redis} | {strategy} | {ceiling:,.0f} "
          f"| {attempts:,.0f} ({attempts / ceiling:.1%}) | {sale['successes_per_second']:,.0f} "
          f"| {sellout} | {sale['winners_latency']['p99_ms']:,.0f} | {sale['losers_latency']['p99_ms']:,.0f} "
          f"| {errors} | {'pass' if sale['invariants_passed'] else 'FAIL'} |")
