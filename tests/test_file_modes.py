"""Issue 10 item 9: the instance folder, the database (and -wal/-shm), backups and the
secret files are owner-only, even under a permissive umask, and old ones are fixed."""

import os
import stat

import pytest

from .conftest import FIXTURES, PASSWORD, run_cli


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(autouse=True)
def permissive_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_new_instance_database_and_wal_are_owner_only(tmp_path):
    from kb.service import KnowledgeBase

    inst = tmp_path / "instance"
    kb = KnowledgeBase(inst)
    try:
        kb.import_dir(FIXTURES / "articles")
        db = kb.db_path
        assert mode(inst) == 0o700
        assert mode(db) == 0o600
        for suffix in ("-wal", "-shm"):
            assert os.path.exists(f"{db}{suffix}"), suffix  # WAL mode, connection open
            assert mode(f"{db}{suffix}") == 0o600, suffix
    finally:
        kb.close()


def test_backup_is_owner_only(tmp_path):
    inst = tmp_path / "instance"
    run_cli("user", "add", "agent1", "--role", "agent", "--password", PASSWORD,
            instance=inst, check=True)  # fmt: skip
    dest = tmp_path / "backups"
    dest.mkdir()
    run_cli("backup", str(dest), instance=inst, check=True)
    (backup,) = dest.iterdir()
    assert mode(backup) == 0o600
    named = tmp_path / "named.db"
    run_cli("backup", str(named), instance=inst, check=True)
    assert mode(named) == 0o600


def test_the_signing_key_lives_in_the_database_and_the_password_file_is_owner_only(tmp_path):
    import cli
    from web import create_app

    inst = tmp_path / "instance"
    key = create_app({"INSTANCE": str(inst), "TESTING": True}).config["SECRET_KEY"]
    assert len(key) == 32 and not (inst / "secret_key").exists()
    assert create_app({"INSTANCE": str(inst), "TESTING": True}).config["SECRET_KEY"] == key
    ctx = cli.Context(str(inst))
    cli._login_hint(ctx)
    ctx.kb.close()
    assert mode(inst / "initial_admin_password.txt") == 0o600


def test_existing_world_readable_files_are_fixed_on_start(tmp_path):
    import cli
    from web import create_app

    inst = tmp_path / "instance"
    run_cli("user", "add", "agent1", "--role", "agent", "--password", PASSWORD,
            instance=inst, check=True)  # fmt: skip
    (inst / "secret_key").write_bytes(b"k" * 32)  # as an earlier release left it
    (inst / "initial_admin_password.txt").write_text("old\n")
    for path, m in (
        (inst, 0o755),
        (inst / "kbcoach.db", 0o644),
        (inst / "secret_key", 0o644),
        (inst / "initial_admin_password.txt", 0o644),
    ):
        os.chmod(path, m)
    assert run_cli("user", "list", instance=inst, check=True).stdout.startswith("agent1")
    assert mode(inst) == 0o700
    assert mode(inst / "kbcoach.db") == 0o600
    # the old key moves into the database (logins made with it stay valid)
    assert create_app({"INSTANCE": str(inst), "TESTING": True}).config["SECRET_KEY"] == b"k" * 32
    assert not (inst / "secret_key").exists()
    ctx = cli.Context(str(inst))
    cli._login_hint(ctx)  # what `kbcoach serve` says at start
    ctx.kb.close()
    assert mode(inst / "initial_admin_password.txt") == 0o600
