"""The `gridwatch` command: the one entry point that configures logging and wires the packages together."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from core.errors import ConfigError, GridwatchError
from core.passwords import hash_password
from core.redact import RedactingFilter
from detectors.manifest import load_manifest
from gridwatch.dryrun import describe, dry_run, summary
from gridwatch.intake_setup import EVIDENCE_DIR, store_targets
from gridwatch.modelstore import fetch_model
from gridwatch.redis_setup import with_redis
from gridwatch.runtime import build_detector, load_settings, run_forever
from gridwatch.worker import run_worker
from ingest.cameras import Camera, load_cameras
from ingest.fleet import Progress, export_fleet, import_fleet
from ingest.fleet_files import write_atomic
from ingest.sensor_fleet import export_sensors, import_sensors
from intake.evidence import EvidenceStore
from intake.outbox import replay_command
from intake.retention import RetentionPolicy, prune
from rules.categories import load_categories
from rules.engine import RuleEngine, category_problems
from rules.loader import check_rule_files, load_rule_files

logger = logging.getLogger("gridwatch")


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    logging.getLogger("libav").setLevel(logging.ERROR)


def _cmd_run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config, host=args.host, port=args.port)
    run_forever(args.config, settings)
    return 0


def _cmd_models_fetch(args: argparse.Namespace) -> int:
    settings = load_settings(args.config) if args.config else load_settings(None)
    mirror = args.mirror or settings.model_mirror
    path = fetch_model(settings.models_dir / f"{args.name}.yaml", settings.models_dir, mirror)
    print(f"{args.name}: {path} (sha256 verified)")
    return 0


def _cmd_models_export(args: argparse.Namespace) -> int:
    # optional extra (torch + ultralytics, seconds to import): loaded only by this command
    from gridwatch.export import export_model

    manifest, path = export_model(args.weights, args.models_dir, name=args.name, imgsz=args.imgsz)
    print(f"{manifest.name}: {path} and {args.models_dir / manifest.name}.yaml (dynamic batch)")
    return 0


def _fp32_convs(value: str) -> str:
    if value == "auto" or (value.isdigit() and int(value) <= 64):
        return value
    raise argparse.ArgumentTypeError(f"expected auto or a number of convs 0-64, got {value!r}")


def _cmd_models_quantize(args: argparse.Namespace) -> int:
    # needs the onnx package (export extra): loaded only by this command
    from gridwatch.agreement import agreement_report
    from gridwatch.quantize import quantize_model

    fp32_convs = None if args.fp32_convs == "auto" else int(args.fp32_convs)
    manifest, path, lines = quantize_model(args.models_dir, args.name, args.calibration, args.frames, fp32_convs)
    for line in lines:
        print(line)
    print(f"{manifest.name}: {path}")
    print(agreement_report(args.models_dir, args.name, manifest.name, args.report_on or args.calibration))
    return 0


def _cmd_rules_check(args: argparse.Namespace) -> int:
    problems = check_rule_files([Path(p) for p in args.paths])
    if not problems:
        problems = _compile_problems([Path(p) for p in args.paths], args.config)
    for line in problems:
        print(line)
    if problems:
        return 1
    print(f"ok: {', '.join(args.paths)}")
    return 0


def _compile_problems(paths: list[Path], config: Path | None) -> list[str]:
    """What only compiling finds: classes the model lacks, categories the table lacks."""
    settings = load_settings(config)
    manifest = settings.models_dir / f"{settings.detector.model}.yaml"
    ruleset, categories = load_rule_files(paths), load_categories(config)
    if not manifest.is_file():  # no model to check class names against: the categories still are
        return category_problems(ruleset, categories)
    try:
        RuleEngine(ruleset, load_manifest(manifest).labels, categories=categories)
    except ConfigError as exc:
        return list(exc.problems)
    return []


def _aware(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone: write it like 2026-05-01T22:30:00+08:00")
    return moment


def _test_camera(args: argparse.Namespace) -> Camera:
    """The camera the rules are tested for: from the config's cameras.yaml when it has that id, else a keyframe
    camera; `--every` and `--mode` override its revisit interval and visit mode."""
    camera = Camera(id=args.camera, url="file:///dev/null", revisit_s=1.0)
    cameras_file = args.config / "cameras.yaml" if args.config else None
    if cameras_file is not None and cameras_file.is_file():
        camera = next((c for c in load_cameras(cameras_file) if c.id == args.camera), camera)
    update: dict[str, object] = {}
    if args.every is not None:
        update["revisit_s"] = args.every
    if args.mode is not None:
        update["mode"] = args.mode
    return Camera.model_validate({**camera.model_dump(exclude_unset=True), **update}) if update else camera


def _cmd_rules_test(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    detector = build_detector(settings)
    categories = load_categories(args.config)
    engine = RuleEngine(load_rule_files([Path(p) for p in args.paths]), detector.labels, categories=categories)
    camera = _test_camera(args)
    at = args.at or datetime.now(UTC)
    sim = dry_run(engine, detector, args.on, camera, at=at, duration_s=args.duration, out_dir=args.out)
    for event in sim.events:
        print(describe(event, at, sim.snapshots.get(event.id)))
    print(summary(sim, [r.id for r in engine.rules_for(camera.id)]))
    return 0


def _cmd_outbox_replay(args: argparse.Namespace) -> int:
    target: Path | str = args.db if args.db is not None else store_targets(load_settings(args.config))[1]
    print(replay_command(target, args.ids, args.dead))
    return 0


def _cmd_evidence_prune(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    events, cases = store_targets(settings)
    policy = RetentionPolicy.from_settings(settings.intake.retention, dry_run=args.dry_run)
    report = prune(
        EvidenceStore(settings.data_dir / EVIDENCE_DIR),
        events,
        cases if not isinstance(cases, Path) or cases.is_file() else None,
        policy,
        datetime.now(UTC),
    )
    print(report.model_dump_json(indent=2) if args.json else report.text())
    return 0


def _terminal_progress() -> Progress | None:
    """Rows done so far, redrawn on one line of stderr: only when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None

    def show(stage: str, done: int, total: int) -> None:
        text = f"{stage}: {done:,} / {total:,} rows" if total else f"{stage} ..."
        print(f"\r\x1b[K{text}", end="", file=sys.stderr, flush=True)

    return show


def _cmd_cameras_import(args: argparse.Namespace) -> int:
    started, progress = time.perf_counter(), _terminal_progress()
    try:
        report = import_fleet(args.file, args.config, progress)
    except ConfigError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        errors = sum(1 for line in exc.problems if ": warning: " not in line)
        print(f"{args.file}: refused, {errors} problem(s); cameras.yaml left as it was", file=sys.stderr)
        return 2
    finally:
        if progress is not None:
            print("\r\x1b[K", end="", file=sys.stderr, flush=True)  # the progress line goes away
    for line in report.warnings:
        print(line, file=sys.stderr)
    target = args.config / "cameras.yaml"
    if report.previous_problems:
        print(f"{target}: the old file did not load ({report.previous_problems} problem(s)): all counted as added")
    done = "written" if report.written else "unchanged"
    print(
        f"{target}: {done}, {report.cameras:,} cameras from {args.file}: {report.diff.text()}"
        f" ({len(report.warnings)} warning(s), {time.perf_counter() - started:.1f} s)"
    )
    return 0


def _export_format(args: argparse.Namespace) -> str:
    """`--format`, else what `-o`'s suffix says (yaml for .yaml / .yml), else csv."""
    suffix = args.output.suffix.lower().lstrip(".") if args.output else ""
    return str(args.format or ("yaml" if suffix in ("yaml", "yml") else "csv"))


def _cmd_cameras_export(args: argparse.Namespace) -> int:
    fmt = _export_format(args)
    export = export_fleet(args.config, fmt, include_credentials=args.include_credentials)
    if args.output is None:
        sys.stdout.write(export.text)
        return 0
    write_atomic(args.output, export.text, private=export.holds_credentials)
    mode = ", with credentials, mode 0600" if export.holds_credentials else ""
    print(f"{args.output}: {export.cameras:,} cameras as {fmt}{mode}", file=sys.stderr)
    return 0


def _add_cameras(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cameras = sub.add_parser("cameras", help="the camera fleet: import and export cameras.yaml as CSV or YAML")
    commands = cameras.add_subparsers(dest="cameras_command", required=True)
    config_help = "config folder holding cameras.yaml (default: the current folder)"
    imp = commands.add_parser("import", help="validate a CSV or YAML fleet and make it cameras.yaml")
    imp.add_argument("file", type=Path, help="a .csv file (header row of column names) or a YAML cameras file")
    imp.add_argument("--config", type=Path, default=Path(), help=config_help)
    imp.set_defaults(func=_cmd_cameras_import)
    exp = commands.add_parser("export", help="write cameras.yaml as CSV or YAML (what import reads)")
    exp.add_argument("--config", type=Path, default=Path(), help=config_help)
    exp.add_argument("--format", choices=["csv", "yaml"], default=None, help="default: from -o's suffix, else csv")
    exp.add_argument("-o", "--output", type=Path, default=None, help="file to write (default: standard output)")
    exp.add_argument(
        "--include-credentials",
        action="store_true",
        help="export passwords written out in urls (not ${VAR}); the file is created with mode 0600",
    )
    exp.set_defaults(func=_cmd_cameras_export)


def _cmd_sensors_import(args: argparse.Namespace) -> int:
    try:
        report = import_sensors(args.file, args.config)
    except ConfigError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        print(f"{args.file}: refused, {len(exc.problems)} problem(s); sensors.yaml left as it was", file=sys.stderr)
        return 2
    target = args.config / "sensors.yaml"
    if report.previous_problems:
        print(f"{target}: the old file did not load ({report.previous_problems} problem(s)): all counted as added")
    done = "written" if report.written else "unchanged"
    print(f"{target}: {done}, {report.sensors:,} sensors from {args.file}: {report.diff.text()}")
    return 0


def _cmd_sensors_export(args: argparse.Namespace) -> int:
    fmt = _export_format(args)
    text, count = export_sensors(args.config, fmt)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    write_atomic(args.output, text)
    print(f"{args.output}: {count:,} sensors as {fmt}", file=sys.stderr)
    return 0


def _add_sensors(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sensors = sub.add_parser("sensors", help="the sensor registry: import and export sensors.yaml as CSV or YAML")
    commands = sensors.add_subparsers(dest="sensors_command", required=True)
    config_help = "config folder holding sensors.yaml and cameras.yaml (default: the current folder)"
    imp = commands.add_parser("import", help="validate a CSV or YAML sensor list and make it sensors.yaml")
    imp.add_argument("file", type=Path, help="a .csv file (header row of column names) or a YAML sensors file")
    imp.add_argument("--config", type=Path, default=Path(), help=config_help)
    imp.set_defaults(func=_cmd_sensors_import)
    exp = commands.add_parser("export", help="write sensors.yaml as CSV or YAML (what import reads)")
    exp.add_argument("--config", type=Path, default=Path(), help=config_help)
    exp.add_argument("--format", choices=["csv", "yaml"], default=None, help="default: from -o's suffix, else csv")
    exp.add_argument("-o", "--output", type=Path, default=None, help="file to write (default: standard output)")
    exp.set_defaults(func=_cmd_sensors_export)


def _cmd_worker(args: argparse.Namespace) -> int:
    run_worker(args.config, with_redis(load_settings(args.config), args.redis))
    return 0


def _cmd_accounts_hash(args: argparse.Namespace) -> int:
    """Asked twice on a terminal (not echoed); else the first line of stdin. Only the hash is printed."""
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("gridwatch: the two passwords differ", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        print(hash_password(password))
    except ValueError as exc:
        print(f"gridwatch: {exc}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gridwatch", description=__doc__)
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run patrol, detection, rules, intake and the alert wall in one process")
    run.add_argument("--config", type=Path, required=True, help="folder with cameras.yaml and rules/*.yaml")
    run.add_argument("--host", default=None)
    run.add_argument("--port", type=int, default=None)
    run.set_defaults(func=_cmd_run)

    models = sub.add_parser("models", help="model weights").add_subparsers(dest="models_command", required=True)
    fetch = models.add_parser("fetch", help="copy weights from the mirror or upstream and check their sha256")
    fetch.add_argument("name", help="manifest name, e.g. yolox-nano (models/NAME.yaml)")
    fetch.add_argument("--mirror", default=None, help="directory or base URL (default: GRIDWATCH_MODEL_MIRROR)")
    fetch.add_argument("--config", type=Path, default=None)
    fetch.set_defaults(func=_cmd_models_fetch)
    export = models.add_parser("export", help="export an ultralytics .pt to ONNX (dynamic batch) + manifest")
    export.add_argument("weights", type=Path, help="ultralytics detect weights, e.g. yolo11n.pt")
    export.add_argument("--name", default=None, help="manifest name (default: the file's stem)")
    export.add_argument("--imgsz", type=int, default=640)
    export.add_argument("--models-dir", type=Path, default=Path("models"))
    export.set_defaults(func=_cmd_models_export)
    quant = models.add_parser("quantize", help="int8 static quantisation calibrated on real frames")
    quant.add_argument("name", help="manifest name of the fp32 model, e.g. yolox-nano")
    quant.add_argument("--calibration", type=Path, required=True, help="directory of images or a video")
    quant.add_argument("--frames", type=int, default=32, help="calibration frames")
    quant.add_argument("--report-on", type=Path, default=None, help="footage for the agreement report")
    quant.add_argument(
        "--fp32-convs",
        default="auto",
        type=_fp32_convs,
        help="leading convs kept in fp32: a number, or auto (the fewest that keep 97%% of the fp32 boxes)",
    )
    quant.add_argument("--models-dir", type=Path, default=Path("models"))
    quant.set_defaults(func=_cmd_models_quantize)

    rules = sub.add_parser("rules", help="rule files").add_subparsers(dest="rules_command", required=True)
    check = rules.add_parser("check", help="validate rule files; exit 1 with file:line:col per problem")
    check.add_argument("paths", nargs="+")
    check.add_argument("--config", type=Path, default=None, help="config folder: settings.yaml (model), categories")
    check.set_defaults(func=_cmd_rules_check)
    test = rules.add_parser("test", help="dry run: what the rules would fire on a clip, an image or a folder")
    test.add_argument("paths", nargs="+", help="rule files or folders")
    test.add_argument("--on", type=Path, required=True, help="a video clip, an image or a folder of images")
    test.add_argument("--camera", default="dry-run", help="camera id the rules are evaluated for")
    test.add_argument("--every", type=float, default=None, help="seconds between visits (default: the camera's)")
    test.add_argument("--duration", type=float, default=None, help="simulated seconds (default: one pass; clips loop)")
    test.add_argument("--mode", choices=["keyframe", "burst"], default=None, help="visit mode (default: the camera's)")
    test.add_argument("--at", type=_aware, default=None, help="time for arming windows (ISO, with zone)")
    test.add_argument("--out", type=Path, default=None, help="folder for the annotated snapshot of each hit")
    test.add_argument("--config", type=Path, default=None, help="folder of settings.yaml, cameras.yaml, categories")
    test.set_defaults(func=_cmd_rules_test)

    outbox = sub.add_parser("outbox", help="the webhook outbox").add_subparsers(dest="outbox_command", required=True)
    replay = outbox.add_parser("replay", help="send deliveries again: the ids named, or with --dead the dead letters")
    replay.add_argument("ids", nargs="*", help="webhook ids (with --dead, only those that are dead letters)")
    replay.add_argument("--dead", action="store_true", help="dead letters only; with no ids, every dead letter")
    where = replay.add_mutually_exclusive_group(required=True)
    where.add_argument("--db", type=Path, help="the case store's SQLite file")
    where.add_argument("--config", type=Path, help="config folder: settings.yaml (data_dir or intake.database_url)")
    replay.set_defaults(func=_cmd_outbox_replay)

    evidence = sub.add_parser("evidence", help="evidence files").add_subparsers(dest="evidence_command", required=True)
    prune_cmd = evidence.add_parser("prune", help="remove evidence past its retention (intake.retention) and report")
    prune_cmd.add_argument("--config", type=Path, default=None, help="config folder: settings.yaml (data_dir)")
    prune_cmd.add_argument("--dry-run", action="store_true", help="report what would be removed, remove nothing")
    prune_cmd.add_argument("--json", action="store_true", help="the whole report as JSON, every file named")
    prune_cmd.set_defaults(func=_cmd_evidence_prune)
    _add_cameras(sub)
    _add_sensors(sub)

    worker = sub.add_parser("worker", help="a patrol worker of a patrol shared through Redis (no API, no intake)")
    worker.add_argument("--config", type=Path, required=True, help="folder with cameras.yaml and rules/*.yaml")
    worker.add_argument("--redis", default=None, help="redis://[:password@]host:port/db (default: patrol.redis_url)")
    worker.set_defaults(func=_cmd_worker)

    accounts = sub.add_parser("accounts", help="operator accounts").add_subparsers(dest="accounts_cmd", required=True)
    hash_cmd = accounts.add_parser("hash", help="print the scrypt hash of a password read from the tty or stdin")
    hash_cmd.set_defaults(func=_cmd_accounts_hash)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.log_level)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        return 2
    except GridwatchError as exc:
        print(f"gridwatch: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code
