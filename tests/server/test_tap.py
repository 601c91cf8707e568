"""``twistd pychat`` options and the service tree they build."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import cast

import pytest
from twisted.application.service import MultiService
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage

from pychat.server.chat import ChatServer
from pychat.server.tap import Options, StartupError, makeService
from pychat.tls import CERT_FILE, KEY_FILE, certificate_fingerprint, make_self_signed
from tests.log_capture import as_observer


def _build(opts: Options) -> MultiService:
    """makeService, then give the data dir's lock back (these tests never start the tree)."""
    service = makeService(opts, reactor=MemoryReactorClock())
    assert isinstance(service, MultiService)
    for child in service:
        if isinstance(child, ChatServer):
            for hook in child.after_close:
                hook()
    return service


def _options(*argv: str) -> Options:
    opts = Options()
    opts.parseOptions(list(argv))
    return opts


def test_defaults(tmp_path: Path) -> None:
    opts = _options("--data-dir", str(tmp_path))
    assert opts.config.listen == ("ssl:8765",)
    assert opts.config.max_line == 65536


def test_listen_may_be_given_several_times() -> None:
    opts = _options("--listen", "ssl:1:interface=127.0.0.1", "-l", "ssl:1:interface=\\:\\:1")
    assert opts.config.listen == ("ssl:1:interface=127.0.0.1", "ssl:1:interface=\\:\\:1")


@pytest.mark.parametrize(
    "argv",
    [
        ["--max-line", "100"],
        ["--max-line", "lots"],
        ["--idle-timeout", "0"],
        ["--tls-cert", "x.pem"],
    ],
)
def test_bad_options_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(usage.UsageError):
        _options(*argv)


def test_first_start_makes_private_data_dir_and_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    service = _build(_options("--data-dir", str(data)))
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / KEY_FILE).stat().st_mode) == 0o600
    assert len(list(service)) == 3  # the chat server, one listener, the SIGHUP reloader


def test_certificate_is_kept_across_restarts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _build(_options("--data-dir", str(data)))
    first = certificate_fingerprint((data / CERT_FILE).read_bytes())
    _build(_options("--data-dir", str(data)))
    assert certificate_fingerprint((data / CERT_FILE).read_bytes()) == first


def test_loose_data_dir_permissions_are_narrowed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)  # noqa: S103 - the loose mode under test
    _build(_options("--data-dir", str(data)))
    assert stat.S_IMODE(data.stat().st_mode) == 0o700


def test_operator_certificate_is_used(tmp_path: Path) -> None:
    cert, key = make_self_signed("chat.example.org")
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "k.pem").write_bytes(key)
    data = tmp_path / "data"
    opts = _options(
        "--data-dir",
        str(data),
        "--tls-cert",
        str(tmp_path / "c.pem"),
        "--tls-key",
        str(tmp_path / "k.pem"),
    )
    _build(opts)
    assert not (data / CERT_FILE).exists()


def test_mismatched_key_is_a_clear_usage_error(tmp_path: Path) -> None:
    cert, _ = make_self_signed("a")
    _, other_key = make_self_signed("b")
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "k.pem").write_bytes(other_key)
    opts = _options(
        "--data-dir",
        str(tmp_path / "d"),
        "--tls-cert",
        str(tmp_path / "c.pem"),
        "--tls-key",
        str(tmp_path / "k.pem"),
    )
    with pytest.raises(StartupError, match="does not match"):
        _build(opts)


def test_missing_certificate_file_names_the_file(tmp_path: Path) -> None:
    opts = _options(
        "--data-dir",
        str(tmp_path / "d"),
        "--tls-cert",
        str(tmp_path / "nope.pem"),
        "--tls-key",
        str(tmp_path / "nope.key"),
    )
    with pytest.raises(StartupError, match=r"nope\.pem"):
        _build(opts)


def test_bad_endpoint_is_a_usage_error(tmp_path: Path) -> None:
    opts = _options("--data-dir", str(tmp_path / "d"), "--listen", "bogus:1234")
    with pytest.raises(StartupError, match="bogus"):
        _build(opts)


def test_signup_limit_option() -> None:
    assert _options("--signups-per-hour", "20").config.signups_per_hour == 20
    with pytest.raises(usage.UsageError):
        _options("--signups-per-hour", "-1")


def test_connection_cap_fits_the_open_files_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    import resource

    from pychat.server.config import ServerConfig
    from pychat.server.tap import SPARE_DESCRIPTORS, fit_descriptors

    monkeypatch.setattr(resource, "getrlimit", lambda _: (1024, 1024))
    monkeypatch.setattr(resource, "setrlimit", lambda *_: None)
    config = ServerConfig(data_dir=Path("unused"), max_connections=5000)
    fitted = fit_descriptors(config, open_files=400)
    assert fitted.max_connections == 1024 - 400 - SPARE_DESCRIPTORS
    roomy = fit_descriptors(ServerConfig(data_dir=Path("unused")), open_files=10)
    assert roomy.max_connections == ServerConfig(data_dir=Path("unused")).max_connections


def test_login_starts_per_minute_option_reaches_the_limiter(tmp_path: Path) -> None:
    opts = _options("--data-dir", str(tmp_path / "d"), "--login-starts-per-minute", "200")
    assert opts.config.login_starts_per_minute == 200
    service = _build(opts)
    chat = next(s for s in service if isinstance(s, ChatServer))
    assert chat.account_service.logins.login_starts.capacity == 200
    with pytest.raises(usage.UsageError):
        _options("--login-starts-per-minute", "0")


@pytest.mark.parametrize("outside", [False, True], ids=["key-in-data-dir", "key-elsewhere"])
def test_a_store_key_inside_the_data_dir_is_warned_about_at_start(
    tmp_path: Path, outside: bool
) -> None:
    from twisted.logger import globalLogPublisher

    argv = ["--data-dir", str(tmp_path / "data")]
    if outside:
        argv += ["--store-key", str(tmp_path / "etc" / "store.key")]
    seen: list[dict[str, object]] = []
    globalLogPublisher.addObserver(as_observer(seen.append))
    try:
        _build(_options(*argv))
    finally:
        globalLogPublisher.removeObserver(as_observer(seen.append))
    warned = [e for e in seen if "is inside the data dir" in str(e.get("log_format", ""))]
    assert bool(warned) is not outside


def test_a_second_server_on_the_same_data_dir_refuses_to_start(tmp_path: Path) -> None:
    opts = _options("--data-dir", str(tmp_path / "data"))
    first = makeService(opts, reactor=MemoryReactorClock())  # holds the lock
    with pytest.raises(StartupError, match="in use by another process"):
        makeService(_options("--data-dir", str(tmp_path / "data")), reactor=MemoryReactorClock())
    for child in cast(MultiService, first):
        if isinstance(child, ChatServer):
            for hook in child.after_close:
                hook()  # give it back
