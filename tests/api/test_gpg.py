"""gpg's footprint: the process keyring holding the registry's secret key, and every temporary
keyring, leave nothing behind (no directory, no gpg-agent) once they are done with."""
import os
import subprocess
import sys
import textwrap

from chalicelib.signing import gpg


def agents_for(home: str) -> list:
    listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout.splitlines()
    return [line for line in listing if "gpg-agent" in line and home in line]


def test_the_process_keyring_and_its_agent_are_removed_at_exit():
    script = textwrap.dedent("""
        from chalicelib.signing import gpg
        fingerprint, _ = gpg.load_secret_key(gpg.generate_signing_key("exit test"))
        assert gpg.sign_opaque(b"payload", fingerprint)
        print(gpg._instance().gnupghome)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert result.returncode == 0, result.stderr
    home = result.stdout.strip()
    assert home.startswith("/") and "dockless-gnupg-" in home
    assert not os.path.exists(home)
    assert agents_for(home) == []


def test_a_temporary_keyring_is_removed_with_its_agent():
    with gpg.temporary_home() as keyring:
        home = keyring.gnupghome
        generated = keyring.gen_key(keyring.gen_key_input(key_type="EDDSA", key_curve="ed25519", key_usage="sign",
                                                          name_real="temporary", no_protection=True))
        assert generated.fingerprint and agents_for(home)
    assert not os.path.exists(home)
    assert agents_for(home) == []
