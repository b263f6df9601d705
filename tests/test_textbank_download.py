"""`textbank.source: authors`: the download with its SHA-256 check, the text bank's provenance,
the local rule through Snakemake, and the report's line naming the bank. A fixture file is
served on loopback (127.0.0.1) by a thread; nothing leaves the machine."""

from __future__ import annotations

import hashlib
import http.server
import os
import re
import socket
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path

import pytest
import yaml

from clipconcepts.cli import main
from clipconcepts.textbank import read_textbank_parquet, read_textbank_provenance
from clipconcepts.textbank_download import AUTHORS_URL, DownloadError, download_checked

ROOT = Path(__file__).resolve().parents[1]
# 5 description lines (one a duplicate up to case), a blank line; no trailing newline, as the
# authors' file
FIXTURE = "A badge\nA bag\n\nAbandoned factory space\na bag\nWoven textile design"
FIXTURE_BYTES = FIXTURE.encode("utf-8")
DIGEST = hashlib.sha256(FIXTURE_BYTES).hexdigest()
WRONG = "0" * 64


class _Quiet(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, *args):  # no request lines on stderr
        pass

    def do_GET(self):
        _Quiet.requests.append(self.path)
        super().do_GET()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """An HTTP server on 127.0.0.1 serving `descriptions.txt`; yields its base URL."""
    root = tmp_path_factory.mktemp("www")
    (root / "descriptions.txt").write_bytes(FIXTURE_BYTES)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ------------------------------------------------------------------------------- download
def test_download_keeps_the_file_when_its_digest_matches(server, tmp_path):
    out = tmp_path / "bank" / "authors.txt"
    kept = download_checked(f"{server}/descriptions.txt", DIGEST.upper(), out, timeout=5)
    assert out.read_bytes() == FIXTURE_BYTES
    assert (kept.sha256, kept.n_bytes, kept.path) == (DIGEST, len(FIXTURE_BYTES), out)
    assert _leftovers(out.parent) == ["authors.txt"]  # no temporary file left


def test_wrong_checksum_fails_naming_the_key_and_writes_nothing(server, tmp_path):
    out = tmp_path / "bank" / "authors.txt"
    with pytest.raises(DownloadError) as err:
        download_checked(f"{server}/descriptions.txt", WRONG, out, timeout=5)
    message = str(err.value)
    assert "textbank.sha256" in message and DIGEST in message and WRONG in message
    assert f"{server}/descriptions.txt" in message
    assert not out.exists() and _leftovers(out.parent) == []


def test_a_wrong_checksum_keeps_an_earlier_good_file(server, tmp_path):
    out = tmp_path / "authors.txt"
    out.write_text("kept")
    with pytest.raises(DownloadError, match="textbank.sha256"):
        download_checked(f"{server}/descriptions.txt", WRONG, out, timeout=5)
    assert out.read_text() == "kept" and _leftovers(tmp_path) == ["authors.txt"]


def test_unreachable_url_fails_naming_it_and_writes_nothing(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}/descriptions.txt"
    out = tmp_path / "bank" / "authors.txt"
    with pytest.raises(DownloadError) as err:
        download_checked(url, DIGEST, out, timeout=5)
    assert url in str(err.value) and "textbank.url" in str(err.value)
    assert not out.exists() and _leftovers(out.parent) == []


def test_missing_file_on_the_server_fails_with_the_http_status(server, tmp_path):
    out = tmp_path / "authors.txt"
    with pytest.raises(DownloadError, match="HTTP Error 404"):
        download_checked(f"{server}/absent.txt", DIGEST, out, timeout=5)
    assert _leftovers(tmp_path) == []


def test_a_malformed_digest_fails_before_any_request(server, tmp_path):
    before = len(_Quiet.requests)
    for bad in ("", "abc", DIGEST[:-1] + "g"):
        with pytest.raises(ValueError, match="textbank.sha256 must be the file's SHA-256"):
            download_checked(f"{server}/descriptions.txt", bad, tmp_path / "x.txt", timeout=5)
    assert len(_Quiet.requests) == before and _leftovers(tmp_path) == []


def test_the_default_url_is_the_authors_file_pinned_to_a_commit():
    assert AUTHORS_URL.startswith("https://raw.githubusercontent.com/yossigandelsman/")
    assert AUTHORS_URL.endswith("/text_descriptions/image_descriptions_general.txt")
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    assert config["textbank"]["source"] == "authors"  # the paper config's choice
    assert config["textbank"]["url"] == AUTHORS_URL
    assert len(config["textbank"]["sha256"]) == 64


# ------------------------------------------------------------------------------- steps
def test_steps_download_then_build_the_bank_with_its_provenance(server, tmp_path):
    url = f"{server}/descriptions.txt"
    raw, bank = tmp_path / "authors.txt", tmp_path / "textbank.parquet"
    assert main(["textbank-download", "--url", url, "--sha256", DIGEST, "--out", str(raw)]) == 0
    args = ["textbank", "--source", "authors", "--path", str(raw), "--url", url]
    assert main([*args, "--sha256", DIGEST, "--out", str(bank)]) == 0
    texts = [e.text for e in read_textbank_parquet(bank)]
    assert texts == ["A badge", "A bag", "Abandoned factory space", "Woven textile design"]
    info = read_textbank_provenance(bank)
    assert info["source"] == "authors" and info["url"] == url
    assert (info["file_sha256"], info["lines"], info["n_texts"]) == (DIGEST, 5, 4)
    joined = "\n".join(texts).encode()
    assert info["texts_sha256"] == hashlib.sha256(joined).hexdigest()

    # a file altered after the download is refused by the textbank step, naming the key
    raw.write_bytes(FIXTURE_BYTES + b"\nextra")
    assert main([*args, "--sha256", DIGEST, "--out", str(tmp_path / "other.parquet")]) == 1
    assert not (tmp_path / "other.parquet").exists()
    # the download step fails (exit 1) on a wrong digest, leaving nothing
    out = tmp_path / "again.txt"
    assert main(["textbank-download", "--url", url, "--sha256", WRONG, "--out", str(out)]) == 1
    assert not out.exists()


def test_the_default_bank_records_its_provenance_too(tmp_path):
    bank = tmp_path / "textbank.parquet"
    assert main(["textbank", "--source", "default", "--out", str(bank)]) == 0
    info = read_textbank_provenance(bank)
    assert info["source"] == "default" and info["n_texts"] == len(read_textbank_parquet(bank))
    assert "file_sha256" not in info and "url" not in info


# ------------------------------------------------------------------------------- report
def test_the_report_names_the_bank(server, tmp_path):
    from clipconcepts.report.setup_tables import textbank_block

    raw, run = tmp_path / "authors.txt", tmp_path / "run"
    download_checked(f"{server}/descriptions.txt", DIGEST, raw, timeout=5)
    args = ["--source", "authors", "--path", str(raw), "--url", f"{server}/descriptions.txt"]
    assert (
        main(["textbank", *args, "--sha256", DIGEST, "--out", str(run / "textbank.parquet")]) == 0
    )
    html = textbank_block(run)
    assert "Source <b>authors</b>" in html and f"{server}/descriptions.txt" in html
    assert 'data-metric="textbank_lines">5<' in html and DIGEST in html
    assert 'data-metric="textbank_texts">4<' in html and "1 duplicate line dropped" in html
    assert "no text bank file" in textbank_block(tmp_path / "elsewhere")


# ------------------------------------------------------------------------------- the rule
def _snakemake(tmp_path: Path, url: str, sha256: str) -> subprocess.CompletedProcess:
    config = yaml.safe_load((ROOT / "config/demo.yaml").read_text())
    config["textbank"] = {"source": "authors", "url": url, "sha256": sha256, "timeout_s": 5}
    config["results"] = str(tmp_path / "results")
    config["run"] = "dl"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    target = tmp_path / "results" / "dl" / "textbank.parquet"
    command = [sys.executable, "-m", "snakemake", str(target), "-c1"]
    command += ["--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path)]
    command += ["--configfile", str(tmp_path / "config.yaml")]  # takes several: last
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)


def test_the_local_rule_downloads_checks_and_keeps_the_file(server, tmp_path):
    url = f"{server}/descriptions.txt"
    bad = _snakemake(tmp_path, url, WRONG)
    kept = tmp_path / "results" / "dl" / "textbank" / "authors.txt"
    assert bad.returncode != 0
    log = (tmp_path / "logs" / "dl" / "textbank_download.log").read_text()
    assert "textbank.sha256" in log and DIGEST in log
    assert not kept.exists() and _leftovers(kept.parent) == []

    proc = _snakemake(tmp_path, url, DIGEST)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"textbank_download\s+1\n", proc.stdout + proc.stderr)  # job stats
    assert kept.read_bytes() == FIXTURE_BYTES
    info = read_textbank_provenance(tmp_path / "results" / "dl" / "textbank.parquet")
    assert (info["source"], info["url"], info["file_sha256"]) == ("authors", url, DIGEST)


def test_the_download_rule_is_local():
    """On SLURM it runs on the submitting machine (compute nodes may have no internet)."""
    text = (ROOT / "rules" / "textspan.smk").read_text()
    block = text.split("rule textbank_download:")[1].split("\nrule ")[0]
    assert "localrule: True" in block and "textbank-download" in block


def test_the_schema_requires_a_digest_for_the_authors_bank():
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    validate(config, str(ROOT / "config/schema.yaml"))  # the paper config as it stands
    for bad in (None, "not-a-digest"):
        config["textbank"]["sha256"] = bad
        with pytest.raises(WorkflowError, match="sha256"):
            validate(config, str(ROOT / "config/schema.yaml"))
    del config["textbank"]["sha256"]
    with pytest.raises(WorkflowError, match="sha256"):
        validate(config, str(ROOT / "config/schema.yaml"))
