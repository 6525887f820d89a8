"""Channels: a byte stream (path or URL) whose head may carry boot-profile (FBOOPROF) and
device-profile (FBOODEVP) records, followed by the artifact (the reference's CHANNELS.md).

:mod:`.magic` tells a channel from a plain artifact by its first bytes (cheap: nothing
is imported for it); :mod:`.head` reads the records, :mod:`.intake` opens a channel and
chooses its boot profile, :mod:`.profiles` builds the session's device-profile pool.
"""
