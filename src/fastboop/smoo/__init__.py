"""smoo: the host side of the inverted mass-storage protocol that serves the rootfs.

``protocol`` is the sans-I/O wire format, ``source`` the block sources that hold the data,
``link`` the small interface a USB (or simulated) gadget connection implements, and ``host``
the pump that serves Requests over such a link and survives reconnects.
"""
