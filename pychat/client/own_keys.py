"""This device's own keys against the key directory: an old device learns it was replaced.

At every login the client compares the directory's current key for its own account with the
keystore's.  Three outcomes:

- the same key: nothing to do;
- a key that a signed rotation from this device's key leads to (the user rotated on another
  device): the new keys come from the key backup, opened with the password just used;
- anything else (the operator reset the account and it was signed up again elsewhere, or the
  server lies): this device is *replaced*.  It says so plainly, refuses to send, and tells the
  user what to do; its old key is retired for everyone who accepted the new one.
"""

from __future__ import annotations

from twisted.logger import Logger

from pychat.client.blocking import BlockingRunner
from pychat.client.context import ClientContext
from pychat.client.events import ClientEvent
from pychat.client.keystore import KeystoreError, open_key_backup
from pychat.client.peer_trust import PeerTrust
from pychat.crypto.identity import IdentityKeyError, parse_public_identity

log = Logger(namespace="pychat.client")


async def check_own_keys(
    ctx: ClientContext,
    trust: PeerTrust,
    password: str,
    run_blocking: BlockingRunner,
    keystore_path: str,
) -> None:
    """Compare the directory's key for this user with the keystore's; adopt a signed
    rotation made on another device, or mark this device replaced (``trust.replaced``)."""
    me, data = ctx.require_login()
    trust.replaced = None
    entry = await ctx.request("get_keys", username=me)
    try:
        listed = parse_public_identity(entry["public_keys"]).fingerprint()
    except (IdentityKeyError, KeyError, TypeError) as exc:
        await _replaced(ctx, trust, f"the server lists malformed keys for you ({exc})", "")
        return
    mine = data.identity.public().fingerprint()
    if listed == mine:
        return
    if await trust.chain_ok(me, mine, listed):
        blob = (await ctx.request("get_key_backup")).get("key_backup")
        try:
            identities = await run_blocking(open_key_backup, str(blob or ""), me, password)
        except (KeystoreError, ValueError) as exc:
            log.warn("the key backup does not open: {e}", e=exc)
            identities = []
        if identities and identities[0].public().fingerprint() == listed:
            known = {k.public().fingerprint() for k in identities}
            data.identities = identities + [
                k for k in data.identities if k.public().fingerprint() not in known
            ]
            await ctx.save()
            ctx.emit(ClientEvent("notice", {"text": _ADOPTED}))
            return
        why = "your keys were rotated on another device, but the key backup does not hold them"
        await _replaced(ctx, trust, why, keystore_path)
        return
    why = (
        "the server's key directory lists other identity keys for you than this device's, "
        "and this device's keys did not sign them: your account was reset and signed up again "
        "elsewhere, or the server is lying"
    )
    await _replaced(ctx, trust, why, keystore_path)


_ADOPTED = (
    "your identity keys were rotated on another device (signed by the old ones): this device "
    "took the new keys from your key backup"
)


async def _replaced(ctx: ClientContext, trust: PeerTrust, why: str, keystore_path: str) -> None:
    me, _ = ctx.require_login()
    where = f" ({keystore_path})" if keystore_path else ""
    trust.replaced = (
        f"THIS DEVICE'S KEYS ARE NOT {me.upper()}'S ANY MORE: {why}. This device will not "
        f"send. If you signed up again elsewhere, move this device's keystore aside{where} "
        "and log in again: your new keys come from the key backup. If you did not, your "
        "account may have been taken over: tell your server's operator."
    )
    ctx.emit(ClientEvent("notice", {"text": trust.replaced}))
