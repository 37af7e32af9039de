"""Signed notes, checkpoints and cosignatures against the C2SP examples and Go's reference key."""

from __future__ import annotations

import base64

import pytest

from neuroledger.audit._note import (
    COSIGNATURE,
    Checkpoint,
    NoteSigner,
    NoteVerifier,
    add_cosignature,
    key_id,
    open_checkpoint,
    open_note,
    parse_note,
    sign_checkpoint,
    sign_note,
)
from neuroledger.errors import SignatureError

# The example key and note of Go's golang.org/x/mod/sumdb/note (the reference implementation).
VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
SIGNED = (
    TEXT
    + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)

# The cosigned checkpoint example of c2sp.org/tlog-cosignature.
COSIGNED_EXAMPLE = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"
    "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)


def test_reference_keys_parse_and_round_trip() -> None:
    verifier = NoteVerifier.from_vkey(VKEY)
    signer = NoteSigner.from_skey(SKEY)
    assert verifier.key_id.hex() == "c74f20a3"
    assert signer.verifier == verifier
    assert signer.skey == SKEY and verifier.vkey == VKEY


def test_signature_matches_the_reference_note_byte_for_byte() -> None:
    assert sign_note(TEXT, [NoteSigner.from_skey(SKEY)]) == SIGNED
    note = open_note(SIGNED, [NoteVerifier.from_vkey(VKEY)])
    assert note.text == TEXT and note.verified == ("PeterNeumann",)


@pytest.mark.parametrize(
    "bad",
    [
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3",
        "PeterNeumann+c74f20a3+!!!!",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
)
def test_malformed_verifier_keys_are_refused(bad: str) -> None:
    with pytest.raises(SignatureError):
        NoteVerifier.from_vkey(bad)


def test_every_truncation_of_the_verifier_key_is_refused() -> None:
    for i in range(len(VKEY)):
        with pytest.raises(SignatureError):
            NoteVerifier.from_vkey(VKEY[:i])


def test_tampered_notes_fail() -> None:
    verifier = NoteVerifier.from_vkey(VKEY)
    with pytest.raises(SignatureError, match="does not verify"):
        open_note(SIGNED.replace("problem,", "problem;"), [verifier])
    other = NoteSigner.generate("PeterNeumann")
    with pytest.raises(SignatureError, match="no signature by a trusted key"):
        open_note(SIGNED, [other.verifier])
    for broken in (
        TEXT,
        SIGNED.replace("— ", "- "),
        SIGNED + "garbage\n",
        SIGNED.replace("\n\n", "\n"),
    ):
        with pytest.raises(SignatureError):
            open_note(broken, [verifier])
    with pytest.raises(SignatureError, match="control character"):
        open_note(SIGNED.replace("problem,", "problem\t"), [verifier])


def test_unknown_signers_are_ignored() -> None:
    stranger = NoteSigner.generate("stranger.example")
    doubly = SIGNED + sign_note(TEXT, [stranger])[len(TEXT) + 1 :]
    note = open_note(doubly, [NoteVerifier.from_vkey(VKEY)])
    assert note.verified == ("PeterNeumann",) and len(note.signatures) == 2


def test_a_signature_line_whose_key_name_holds_a_plus_is_refused() -> None:
    """The signed-note spec forbids '+' in key names, and Go's note.Open rejects the whole
    note; so must we, even when a trusted key's signature on the note verifies."""
    line = SIGNED.splitlines(keepends=True)[-1]
    plus = SIGNED + line.replace("PeterNeumann", "Peter+Neumann")
    with pytest.raises(SignatureError, match="contains '\\+'"):
        parse_note(plus)
    with pytest.raises(SignatureError, match="contains '\\+'"):
        open_note(plus, [NoteVerifier.from_vkey(VKEY)])


def test_checkpoint_round_trip_and_origin_check() -> None:
    log = NoteSigner.generate("log.example/agents/triage")
    cp = Checkpoint(origin=log.name, size=20852163, root=bytes(range(32)), extensions=("ext line",))
    signed = sign_checkpoint(cp, log)
    assert signed.startswith(
        f"{log.name}\n20852163\n{base64.b64encode(bytes(range(32))).decode()}\next line\n\n— "
    )
    assert open_checkpoint(signed, log.verifier) == cp
    other = NoteSigner.generate("log.example/other")
    forged = sign_checkpoint(Checkpoint(origin=other.name, size=1, root=bytes(32)), log)
    with pytest.raises(SignatureError, match="is for log"):
        open_checkpoint(forged, log.verifier)


@pytest.mark.parametrize(
    "body",
    [
        "origin\n01\n" + base64.b64encode(bytes(32)).decode() + "\n",
        "origin\n1\nshort\n",
        "\n1\nAA==\n",
        "origin\n1\n",
    ],
)
def test_malformed_checkpoints_are_refused(body: str) -> None:
    with pytest.raises(SignatureError, match="malformed checkpoint"):
        Checkpoint.parse(body)


def test_spec_cosignature_example_parses() -> None:
    note = parse_note(COSIGNED_EXAMPLE)
    cp = Checkpoint.parse(note.text)
    assert (cp.origin, cp.size) == ("example.com/behind-the-sofa", 20852163)
    log_sig, witness_sig = note.signatures
    assert witness_sig.name == "witness.example.com/w1"
    assert int.from_bytes(witness_sig.blob[:8], "big") == 1679315147  # "time 1679315147"
    assert len(witness_sig.blob) == 8 + 64 and len(log_sig.blob) == 64


def test_witness_cosignature_round_trip() -> None:
    log = NoteSigner.generate("log.example/a")
    witness = NoteSigner.generate("witness.example/w1", sig_type=COSIGNATURE)
    signed = sign_checkpoint(Checkpoint(origin=log.name, size=5, root=bytes(32)), log)
    cosigned = add_cosignature(signed, witness, timestamp=1679315147)
    note = open_note(cosigned, [log.verifier, witness.verifier])
    assert note.verified == (log.name, witness.name)
    assert witness.verifier.key_id == key_id(witness.name, 0x04, witness.verifier.public_key)
    assert base64.b64decode(witness.verifier.vkey.split("+", 2)[2])[0] == 0x04
    tampered = cosigned.replace("\n5\n", "\n6\n")
    with pytest.raises(SignatureError):
        open_note(tampered, [witness.verifier])
    with pytest.raises(SignatureError, match="cosignature key"):
        add_cosignature(signed, log)
