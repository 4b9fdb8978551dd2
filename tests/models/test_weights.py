"""``lasr weights``: registry names resolve to the weights folder; downloads resume, verify and land atomically.

Downloads run against a loopback HTTP server on 127.0.0.1 that honours (or ignores) ``Range``.
"""

from __future__ import annotations

import hashlib
import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from lasr.cli import main
from lasr.errors import LasrError
from lasr.models.weights import REGISTRY, resolve_weights, without_pretrained_files
from lasr.models.download import download

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class _Handler(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    ranges: list[str] = []
    honour_range = True

    def do_GET(self):  # noqa: N802 - http.server API
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        header = self.headers.get("Range")
        self.ranges.append(header or "")
        if header and self.honour_range:
            start = int(header.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.files, _Handler.ranges, _Handler.honour_range = {"/blob.bin": PAYLOAD}, [], True
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _Handler
    httpd.shutdown()
    httpd.server_close()


SHA = hashlib.sha256(PAYLOAD).hexdigest()


def test_download_verifies_and_renames_into_place(server, tmp_path):
    url, _ = server
    target = download(f"{url}/blob.bin", tmp_path / "w" / "blob.bin", sha256=SHA, size=len(PAYLOAD), progress=False)
    assert target.read_bytes() == PAYLOAD
    assert not (tmp_path / "w" / "blob.bin.part").exists()


@pytest.mark.parametrize("honour_range", [True, False])
def test_download_resumes_a_partial_file(server, tmp_path, honour_range):
    url, handler = server
    handler.honour_range = honour_range
    part = tmp_path / "blob.bin.part"
    part.write_bytes(PAYLOAD[:300_000])
    target = download(f"{url}/blob.bin", tmp_path / "blob.bin", sha256=SHA, progress=False)
    assert handler.ranges == ["bytes=300000-"]
    assert target.read_bytes() == PAYLOAD  # a server that ignores Range restarts the file


def test_checksum_mismatch_leaves_no_file(server, tmp_path):
    url, _ = server
    with pytest.raises(LasrError, match="sha256"):
        download(f"{url}/blob.bin", tmp_path / "blob.bin", sha256="0" * 64, progress=False)
    assert not (tmp_path / "blob.bin").exists() and not (tmp_path / "blob.bin.part").exists()


def test_http_error_names_the_url(server, tmp_path):
    url, _ = server
    with pytest.raises(LasrError, match="HTTP 404.*absent.bin"):
        download(f"{url}/absent.bin", tmp_path / "x", progress=False)


def test_registry_names_resolve_to_the_weights_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("LASR_WEIGHTS", str(tmp_path))
    assert resolve_weights("passt-audioset") == str(tmp_path / "passt-s-f128-p16-s16-ap.468.pt")
    assert resolve_weights("some/explicit.pt") == "some/explicit.pt" and resolve_weights(None) is None
    wanted = {"passt-audioset", "beats-iter3", "eat-base-pretrain", "roberta-large", "clap-music-speech-audioset",
              "audiosep-base", "dcase2024-t9-baseline", "dcase2025-t6-baseline"}
    assert wanted <= set(REGISTRY)


def test_weights_cli_download_check_list(server, tmp_path, monkeypatch, capsys):
    url, handler = server
    buffer = io.BytesIO()
    torch.save({"time_new_pos_embed": torch.zeros(1, 768, 1, 99)}, buffer)  # what read_passt_checkpoint looks for
    handler.files["/passt.pt"] = buffer.getvalue()
    monkeypatch.setenv("LASR_WEIGHTS", str(tmp_path))
    assert main(["weights", "check", "passt-audioset"]) == 1
    assert main(["weights", "download", "passt-audioset", "--url", f"{url}/passt.pt", "--no-progress"]) == 0
    assert (tmp_path / "passt-s-f128-p16-s16-ap.468.pt").read_bytes() == buffer.getvalue()
    capsys.readouterr()
    assert main(["weights", "check", "passt-audioset"]) == 0
    assert "passt-audioset               ok" in capsys.readouterr().out
    assert main(["weights", "list"]) == 0
    listing = capsys.readouterr().out
    assert "passt-audioset               present" in listing and "roberta-large                missing" in listing
    assert main(["weights", "download", "nope"]) == 2


def test_rebuilding_a_trained_model_reads_no_pretrained_file():
    section = {"class_path": "lasr.models.dual_encoder.DualEncoder", "init_args": {
        "audio_encoder": {"class_path": "lasr.models.audio.passt.PaSSTEncoder",
                          "init_args": {"checkpoint": "passt-audioset"}},
        "text_encoder": {"class_path": "lasr.models.text.HFTextEncoder", "init_args": {"name_or_path": "minilm"}}}}
    rebuilt = without_pretrained_files(section)["init_args"]
    assert rebuilt["audio_encoder"]["init_args"] == {"checkpoint": None, "allow_random_init": True}
    assert rebuilt["text_encoder"]["init_args"] == {"name_or_path": "minilm", "pretrained": False}
    assert section["init_args"]["audio_encoder"]["init_args"] == {"checkpoint": "passt-audioset"}  # a copy
