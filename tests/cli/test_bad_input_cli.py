"""Bad input at the command line, in the standalone app and in the examples.

Each refused input ends in exit code 2 (130 for Ctrl-C) and one line on stderr that names
the problem, with no traceback; nothing is written where the input is refused. Cases use
placeholders: ``{tmp}`` (the test's folder, prepared by :func:`prepare`), ``{busy}`` (a
port a socket of the test listens on), ``{free}`` (a port nothing listens on) and
``{python}`` (this interpreter).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lycoris_eval.cli.main import main
from lycoris_eval.config import EvalConfig
from lycoris_eval.scoring import finished_grid
from lycoris_eval.scoring.pipeline import evaluate
from tests.helpers import SMALL, infotext, make_grid, make_set, pattern, save_png

ROOT = Path(__file__).resolve().parents[2]
ERROR = "lycoris-eval: error: "
INTERRUPTED = "lycoris-eval: interrupted"
# the cheapest real pipeline: one small random encoder, no network
FAST = (
    "--random-weights --clip-model ViT-S-32 --dinov2-arch vits14 --metrics vendi "
    "--device cpu --offline --quiet --cache-dir {tmp}/cache"
).split()
SWEEP = ["{python}", "examples/headless_sweep.py", "--adapter", "a", "--prompt", "p"]
ON_LINUX = pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")


def no_gradio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` fails, find_spec says missing


def interrupt(monkeypatch: pytest.MonkeyPatch) -> None:
    def ctrl_c(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(finished_grid, "evaluate", ctrl_c)  # the CLI scores through the one path


@dataclass(frozen=True)
class Case:
    argv: list[str]
    code: int
    words: tuple[str, ...]
    patch: Callable[[pytest.MonkeyPatch], None] | None = None
    prefix: str = ERROR


def case(name: str, argv: list[str], code: int, *words: str, marks=(), **kwargs) -> object:
    return pytest.param(Case(argv, code, words, **kwargs), id=name, marks=marks)


CASES = [
    # python -m lycoris_eval evaluate
    case("all-truncated", ["evaluate", "{tmp}/truncated", *FAST, "--out", "{tmp}/out"], 2,
         "images folder {tmp}/truncated: no image is readable", "a.png: corrupt or truncated"),
    case("all-random-bytes", ["evaluate", "{tmp}/random", *FAST, "--out", "{tmp}/out"], 2,
         "images folder {tmp}/random: no image is readable", "x.png: not a readable image"),
    case("truncated-and-random", ["evaluate", "{tmp}/mixed", *FAST], 2,
         "{tmp}/mixed: no image is readable", "t.png: corrupt or truncated", "r.png: not a readable image"),
    case("empty-folder", ["evaluate", "{tmp}/empty", *FAST, "--out", "{tmp}/out"], 2, "no images in {tmp}/empty"),
    case("no-image-files", ["evaluate", "{tmp}/documents", *FAST], 2, "no images in {tmp}/documents"),
    case("missing-folder", ["evaluate", "{tmp}/nowhere", *FAST, "--out", "{tmp}/out"], 2,
         "folder not found: {tmp}/nowhere"),
    case("file-not-folder", ["evaluate", "{tmp}/a-file", *FAST, "--out", "{tmp}/out"], 2, "not a folder: {tmp}/a-file"),
    case("out-is-a-file", ["evaluate", "{tmp}/good", *FAST, "--out", "{tmp}/a-file"], 2, "--out {tmp}/a-file is a file"),
    case("out-under-a-file", ["evaluate", "{tmp}/good", *FAST, "--out", "{tmp}/a-file/sub"], 2,
         "--out {tmp}/a-file/sub is under {tmp}/a-file, which is a file"),
    case("out-unwritable", ["evaluate", "{tmp}/good", *FAST, "--out", "/proc/lycoris-eval-x"], 2,
         "--out /proc/lycoris-eval-x: cannot create files in /proc", marks=ON_LINUX),
    case("reference-unreadable", ["evaluate", "{tmp}/good", *FAST, "--reference", "{tmp}/random"], 2,
         "reference folder {tmp}/random: no image is readable"),
    case("reference-missing", ["evaluate", "{tmp}/good", *FAST, "--reference", "{tmp}/nowhere"], 2,
         "folder not found: {tmp}/nowhere"),
    case("batch-size-0", ["evaluate", "{tmp}/good", *FAST, "--batch-size", "0"], 2, "batch size must be at least 1"),
    case("ctrl-c-no-cache", ["evaluate", "{tmp}/good", *FAST, "--no-cache", "--out", "{tmp}/out"], 130,
         "nothing was kept", "--no-cache", patch=interrupt, prefix=INTERRUPTED),
    case("ctrl-c-cache", ["evaluate", "{tmp}/good", *FAST, "--out", "{tmp}/out"], 130,
         "features computed so far are in the cache", patch=interrupt, prefix=INTERRUPTED),
    # python -m lycoris_eval ui
    case("ui-without-gradio", ["ui", "{tmp}/good", "--port", "{free}"], 2,
         "needs gradio", 'pip install "sd-webui-lycoris-eval[ui]"', "bash tools/setup.sh", patch=no_gradio),
    case("ui-port-busy", ["ui", "{tmp}/good", "--port", "{busy}"], 2, "--port {busy}: 127.0.0.1:{busy} is not free"),
    case("ui-port-too-big", ["ui", "{tmp}/good", "--port", "70000"], 2, "--port 70000", "1 to 65535"),
    case("ui-port-0", ["ui", "{tmp}/good", "--port", "0"], 2, "--port 0", "1 to 65535"),
    case("ui-port-negative", ["ui", "{tmp}/good", "--port", "-1"], 2, "--port -1", "1 to 65535"),
    case("ui-root-missing", ["ui", "{tmp}/nowhere", "--port", "{free}"], 2, "root folder not found: {tmp}/nowhere"),
    case("ui-root-is-a-file", ["ui", "{tmp}/a-file", "--port", "{free}"], 2, "root {tmp}/a-file is not a folder"),
    # examples/headless_sweep.py (a subprocess: it is a script, not part of the package)
    case("sweep-unreachable", [*SWEEP, "--url", "http://127.0.0.1:{free}"], 2,
         "cannot reach the WebUI at http://127.0.0.1:{free}", "start it with --api"),
    case("sweep-url-without-scheme", [*SWEEP, "--url", "127.0.0.1:7860"], 2, "--url 127.0.0.1:7860"),
]  # fmt: skip


def prepare(tmp: Path) -> None:
    """Folders the cases point at: good, broken in each way, empty, and a plain file."""
    good = save_png(pattern(1), tmp / "good.png", infotext("a cat", 1))
    data = good.read_bytes()
    for name in ("good", "truncated", "random", "mixed", "empty", "documents"):
        (tmp / name).mkdir()
    good.rename(tmp / "good" / "one.png")
    (tmp / "truncated" / "a.png").write_bytes(data[:-200])
    (tmp / "truncated" / "b.png").write_bytes(data[: len(data) // 2])
    for folder, name in (("random", "x.png"), ("random", "y.png"), ("mixed", "r.png")):
        (tmp / folder / name).write_bytes(os.urandom(600))
    (tmp / "mixed" / "t.png").write_bytes(data[:-200])
    (tmp / "documents" / "notes.pdf").write_bytes(b"%PDF-1.4")
    (tmp / "a-file").write_text("not a folder")


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def files_under(folder: Path) -> set[Path]:
    """Everything under ``folder`` but the feature cache (not an output)."""
    return {p for p in folder.rglob("*") if "cache" not in p.relative_to(folder).parts}


def run_case(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    if argv[0] == sys.executable:
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
        return proc.returncode, proc.stderr
    code = main(argv)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("bad", CASES)
def test_bad_input_is_one_line_and_writes_nothing(bad: Case, tmp_path, monkeypatch, capsys, busy_port):
    prepare(tmp_path)
    values = {"tmp": str(tmp_path), "busy": str(busy_port), "free": str(free_port()), "python": sys.executable}
    argv = [arg.format(**values) for arg in bad.argv]
    if bad.patch is not None:
        bad.patch(monkeypatch)
    before = files_under(tmp_path)
    code, err = run_case(argv, capsys)
    lines = err.strip().splitlines()
    assert code == bad.code, err
    assert len(lines) == 1 and lines[0].startswith(bad.prefix), err
    assert "Traceback" not in err
    for words in bad.words:
        assert words.format(**values) in lines[0]
    assert files_under(tmp_path) == before  # no --out folder, no scores files


def small_config(tmp_path: Path, **kwargs) -> EvalConfig:
    base = dict(random_weights=True, allow_download=False, device="cpu", cache_dir=tmp_path / "cache", **SMALL)
    return EvalConfig(**{**base, **kwargs})


def test_skipped_images_never_count_as_scored(tmp_path):
    """A truncated image (its header and infotext read fine, its pixels do not) is only
    under run.skipped: not in a cell's images or seeds, not in any n_images."""
    grid = tmp_path / "grid"
    make_grid(grid)
    broken = grid / "ckA-p0-styleA-1.0-s2.png"
    broken.write_bytes(broken.read_bytes()[:-200])
    reference = make_set(tmp_path / "ref", 3, 500)
    (reference / "zz.png").write_bytes((reference / "img0.png").read_bytes()[:-100])
    doc = evaluate(grid, small_config(tmp_path, reference_dir=reference, metrics=("style_loss_ref", "vendi")))
    run = doc["run"]
    assert {(s["set"], s["file"]) for s in run["skipped"]} == {("images", broken.name), ("reference", "zz.png")}
    assert run["n_images"] == 5 and run["n_files"] == 6 and run["n_reference"] == 3
    cell = next(c for c in doc["cells"] if c["weight"] == 1.0)
    assert cell["images"] == ["ckA-p0-styleA-1.0-s1.png"] and cell["image_seeds"] == [1] and cell["seeds"] == [1]
    assert all(broken.name not in c["images"] for c in doc["cells"])
    assert sum(len(c["images"]) for c in doc["cells"]) == 5
    summary = next(s for s in doc["summaries"] if s["weight"] == 1.0)
    assert summary["n_images"] == 1 and summary["metrics"]["style_loss_ref"]["n_cells"] == 1
    assert sum(s["n_images"] for s in doc["summaries"]) == 5


def test_make_example_is_deterministic_and_reproduces_the_shipped_files(tmp_path):
    """Python's hash() differs per process; the example's Model hash must not."""
    outs = [tmp_path / "first", tmp_path / "second"]
    for out in outs:
        cmd = [sys.executable, "examples/make_example.py", "--out", str(out)]
        subprocess.run(cmd, cwd=ROOT, check=True, timeout=120)
    first = {p.relative_to(outs[0]): p.read_bytes() for p in sorted(outs[0].rglob("*.png"))}
    second = {p.relative_to(outs[1]): p.read_bytes() for p in sorted(outs[1].rglob("*.png"))}
    assert len(first) == 50 and first == second
    shipped = {name: (ROOT / "examples" / name).read_bytes() for name in first}
    assert shipped == first, "examples/ differ from make_example.py's output: run python examples/make_example.py"


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--device", "gpu0"], "unknown device 'gpu0'; use auto, cpu, cuda, cuda:N or mps"),
        (["--vendi-q", "-1"], "Vendi order q must be positive, got -1.0"),
        (["--vendi-q", "0"], "Vendi order q must be positive, got 0.0"),
    ],
)
def test_bad_option_values_stop_before_any_image_is_read(tmp_path, capsys, monkeypatch, argv, words):
    """Issue #23: checked when the config is built, before the folder is even listed."""
    from lycoris_eval.scoring import pipeline

    monkeypatch.setattr(pipeline, "scan_folder", lambda *a, **k: pytest.fail("images were read"))
    assert main(["evaluate", str(tmp_path / "no-such-folder"), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]


def test_compare_names_a_wrong_file_and_an_unknown_metric(tmp_path, capsys):
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    assert main(["compare", str(other), "a", "b"]) == 2
    assert "this is not a scores.json of lycoris-eval" in capsys.readouterr().err
    scores = tmp_path / "scores.json"
    scores.write_text('{"schema": "lycoris-eval/scores", "schema_version": 2, "metrics": {"vendi": {}}}')
    assert main(["compare", str(scores), "ck1", "ck2", "--metric", "style_los"]) == 2
    assert "metric: 'style_los' is not scored here; scored: vendi" in capsys.readouterr().err
