"""One error path for the whole CLI: a LasrError (or an OSError naming its file) is one or two lines on stderr and
exit code 2, tools and Lightning subcommands alike; the traceback only with --debug or LASR_DEBUG=1."""

from pathlib import Path

import pytest
import yaml

from lasr.cli import main
from lasr.errors import DataError, LasrError

from distill import tiny

REPO = Path(__file__).resolve().parents[1]


def _error_lines(capsys) -> list[str]:
    """stderr lines of the error report (Lightning's own INFO lines are not part of it)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith(("lasr ", "(run again"))]


def test_tool_error_is_one_line_naming_the_file_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LASR_DEBUG", raising=False)
    missing = tmp_path / "absent.jsonl.gz"
    assert main(["data", "info", str(missing)]) == 2
    lines = _error_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith("lasr data: error: ") and str(missing) in lines[0]


def test_debug_flag_or_environment_shows_the_traceback(tmp_path, monkeypatch):
    missing = str(tmp_path / "absent.jsonl.gz")
    monkeypatch.delenv("LASR_DEBUG", raising=False)
    with pytest.raises(DataError, match="manifest not found"):
        main(["--debug", "data", "info", missing])
    with pytest.raises(DataError):
        main(["data", "info", missing, "--debug"])
    monkeypatch.setenv("LASR_DEBUG", "1")
    with pytest.raises(DataError):
        main(["data", "info", missing])
    monkeypatch.setenv("LASR_DEBUG", "0")
    assert main(["data", "info", missing]) == 2


def test_wrapped_lasr_error_and_os_error_are_messages_but_bugs_keep_their_traceback(monkeypatch, capsys):
    import lasr.cli as cli

    monkeypatch.delenv("LASR_DEBUG", raising=False)

    def wrapped(command, argv):
        try:
            raise LasrError("config.yaml, key model.x: bad value 3")
        except LasrError as err:
            raise RuntimeError("a library wrapped it") from err

    monkeypatch.setattr(cli, "_dispatch", wrapped)
    assert main(["fit"]) == 2
    lines = _error_lines(capsys)
    assert lines[0] == "lasr fit: error: config.yaml, key model.x: bad value 3" and len(lines) == 2

    def os_error(command, argv):
        open("/nonexistent-dir/x.wav", "rb")

    monkeypatch.setattr(cli, "_dispatch", os_error)
    assert main(["separate"]) == 2
    assert "/nonexistent-dir/x.wav" in _error_lines(capsys)[0]

    def bug(command, argv):
        raise KeyError("a bug")

    monkeypatch.setattr(cli, "_dispatch", bug)
    with pytest.raises(KeyError):
        main(["fit"])


def test_argument_error_is_the_parser_message_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["search", "--no-such-flag"])
    assert info.value.code == 2
    assert "lasr search: error: the following arguments are required: --index" in capsys.readouterr().err


def test_error_in_lightning_setup_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    """A bad training manifest is found before the first step under `lasr fit` (preflight), in one line."""
    monkeypatch.delenv("LASR_DEBUG", raising=False)
    missing = tmp_path / "no_such_train.jsonl.gz"
    config = {
        "seed_everything": 0,
        "trainer": {"accelerator": "cpu", "max_epochs": 1, "logger": False, "enable_checkpointing": False,
                    "enable_progress_bar": False, "default_root_dir": str(tmp_path)},
        "model": {"class_path": "lasr.tasks.RetrievalTask", "init_args": {"model": tiny.model_section()}},
        "data": {"class_path": "lasr.data.datamodule.AudioTextDataModule",
                 "init_args": {"train": [{"path": str(missing)}], "sample_rate": 16000, "batch_size": 2,
                               "num_workers": 0}},
    }
    path = tmp_path / "bad_data.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["fit", "--config", str(path)]) == 2
    lines = _error_lines(capsys)
    assert 1 <= len(lines) <= 2 and lines[0].startswith("lasr fit: error: ") and str(missing) in lines[0]
