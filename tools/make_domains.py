"""Write a synthetic data set whose true translation is known (see cycletrans.synthetic).

    python tools/make_domains.py datasets/labels2scenes --kind labels2scenes --size 64 --train 200 --test 50 --seed 0

gives trainA/ trainB/ (unpaired), testA/ testB/ (paired by file name) and palette.json, ready for
`cycletrans train DATA` and `cycletrans eval DATA --style NAME`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from cycletrans.cli.app import info, make_progress  # noqa: E402
from cycletrans.errors import CycletransError  # noqa: E402
from cycletrans.synthetic import KINDS, make_domains  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write (must be empty or new, unless --force)")
    parser.add_argument("--kind", default="labels2scenes", choices=sorted(KINDS), help="which pair of domains")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (square images)")
    parser.add_argument("--train", type=int, default=200, help="images in each of trainA/ and trainB/")
    parser.add_argument("--test", type=int, default=50, help="pairs in testA/ and testB/")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same images")
    parser.add_argument("--force", action="store_true", help="write into a non-empty folder")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    try:
        with make_progress(args.quiet) as progress:
            bar = progress.add_task(args.kind, total=2 * (args.train + args.test))
            summary = make_domains(args.out, args.kind, args.size, args.train, args.test, args.seed, args.force,
                                   on_progress=lambda n: progress.advance(bar, n))
    except CycletransError as err:
        print(f"make_domains: error: {err}", file=sys.stderr)
        return err.exit_code
    a, b = summary["domains"]["A"], summary["domains"]["B"]
    info(f"{args.out}: {args.train}+{args.train} unpaired training images ({a} / {b}), {args.test} test pairs, "
         f"{args.size}×{args.size} px, seed {args.seed}, in {time.perf_counter() - start:.1f} s", args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
