"""USB/IP: the sans-I/O protocol core that carries USB over TCP, like h11 and wsproto.

Linux's ``Documentation/usb/usbip_protocol.rst``, both roles, bytes in and values out:
:mod:`.wire` encodes and decodes every message (operation and URB phase);
:mod:`.client` is the importing side (``vhci-hcd``'s job, in userspace) and
:mod:`.server` the exporting side (``usbipd``'s), each a state machine that decides what
may come when. No sockets, threads or clocks here: the anyio connection and the pyusb
backend that make a remote phone look local are transports
(:mod:`fastboop.transports.usbip_net`, :mod:`fastboop.transports.usbip_bus`), and the
simulated phones' USB/IP server is a simulation (:mod:`fastboop.sim.usbip_server`).
"""
