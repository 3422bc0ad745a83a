"""Arrays the kernel reads without counting references to them.

numba gives every array a reference count (its "meminfo") and adjusts it with an atomic instruction each
time compiled code copies a reference: reading ``kp.lt`` inside an inlined hook, passing ``pc`` to one,
taking the row ``coll[a]``. The reference-count pruning pass removes only the pairs it can prove, so in the
replay kernel these atomics were 40–50 % of a job thread's time on the end-to-end benchmark
(``bench/RESULTS.md``, issue #8, 2026-12-05).

``borrowed(x)`` returns ``x`` (an array, or a tuple or namedtuple of arrays and scalars, nested) with every
array's meminfo and parent set to null: the same data, shape and strides, but numba's ``NRT_incref`` /
``NRT_decref`` on it are a null test instead of an atomic. The caller must keep the originals alive while
the borrowed values are used — true of a compiled function's arguments, which the calling Python frame
holds — and a borrowed array must never be returned to Python or stored beyond the call (it owns nothing).
"""

from __future__ import annotations

from numba.core import cgutils, types
from numba.extending import intrinsic


def _strip(context, builder, ty, value):
    if isinstance(ty, types.Array):
        ary = context.make_array(ty)(context, builder, value=value)
        ary.meminfo = cgutils.get_null_value(ary.meminfo.type)
        ary.parent = cgutils.get_null_value(ary.parent.type)
        return ary._getvalue()
    if isinstance(ty, types.BaseTuple):
        out = value
        for i in range(len(ty)):
            item = builder.extract_value(value, i)
            out = builder.insert_value(out, _strip(context, builder, ty[i], item), i)
        return out
    return value


@intrinsic
def borrowed(typingctx, x):
    """``x`` with its arrays' reference counting switched off (see the module's docstring)."""

    def codegen(context, builder, sig, args):
        out = _strip(context, builder, sig.args[0], args[0])
        # the call's result is a new reference: arrays now have none to take, anything else counted does
        context.nrt.incref(builder, sig.return_type, out)
        return out

    return x(x), codegen
