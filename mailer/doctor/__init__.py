"""``doctor``: what would hurt delivery (DNS, the public URL, the next digest), checked before anyone sends."""
