"""Machine-level helpers for the jitted kernels, each also a plain Python function.

Compiled code gets one LLVM instruction per call (``@intrinsic``: the
names below are bound to the intrinsics at the end of this module); under
``NUMBA_DISABLE_JIT=1`` they stay the Python functions, with the same
results, so every kernel stays runnable (and testable) as plain Python.

* :func:`prefetch` -- ask the CPU for a cache line (a no-op in Python);
* :func:`half_to_float` / :func:`bits_to_float` -- float16 and bfloat16
  codes widened exactly (F16C's ``vcvtph2ps`` on x86);
* :func:`fetch_add` -- an atomic ``fetch_add`` on an int64 array element:
  threads running one kernel take work items from a shared counter without
  returning to Python.
"""

from __future__ import annotations

import threading

import numpy as np
from llvmlite import ir
from numba import config
from numba.core import cgutils, types
from numba.extending import intrinsic

_PY_LOCK = threading.Lock()  # fetch_add's atomicity when the kernels run as Python


def prefetch(address: int) -> None:
    """Ask the CPU to bring the cache line at ``address`` in (compiled code only)."""


@intrinsic
def _prefetch(typingctx, address):
    if not isinstance(address, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch.p0"
        )
        builder.call(fn, [builder.inttoptr(args[0], i8p), i32(0), i32(3), i32(1)])  # read, all caches, data
        return context.get_dummy_value()

    return types.none(address), codegen


def half_to_float(code):
    """float16 code (uint16) -> float32, exactly."""
    return np.float32(np.uint16(code).view(np.float16))


@intrinsic
def _half_to_float(typingctx, code):
    if code != types.uint16:
        return None

    def codegen(context, builder, signature, args):
        return builder.fpext(builder.bitcast(args[0], ir.HalfType()), ir.FloatType())

    return types.float32(types.uint16), codegen


def bits_to_float(bits):
    """The float32 whose bits are ``bits`` (uint32)."""
    return np.uint32(bits).view(np.float32)


@intrinsic
def _bits_to_float(typingctx, bits):
    if bits != types.uint32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.uint32), codegen


def fetch_add(counter, value):
    """``old = counter[0]; counter[0] += value; return old``, atomically (int64 array)."""
    with _PY_LOCK:
        old = int(counter[0])
        counter[0] = old + value
    return old


@intrinsic
def _fetch_add(typingctx, counter, value):
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64 and isinstance(value, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = cgutils.get_item_pointer(
            context, builder, signature.args[0], array, [context.get_constant(types.intp, 0)]
        )
        delta = context.cast(builder, args[1], signature.args[1], types.int64)
        return builder.atomic_rmw("add", ptr, delta, "monotonic")

    return types.int64(counter, value), codegen


def unowned(value):
    """``value`` (an array, or a tuple of arrays and scalars) as views with no reference count (Python: itself).

    Jitted code counts references to every array it passes between
    functions or reads out of a tuple: an atomic update of a count shared by
    every thread that uses the array. For the model's tables, read by all
    threads for every text, that shared count serialized the threads. A
    view without an owner (a null ``meminfo``) is never counted. Only for
    arrays the caller keeps alive for the whole call (kernel arguments),
    never for arrays the kernel allocates.
    """
    return value


def _strip(context, builder, typ, value):
    if isinstance(typ, types.Array):
        array = context.make_array(typ)(context, builder, value)
        array.meminfo = context.get_constant_null(types.MemInfoPointer(typ.dtype))
        array.parent = context.get_constant_null(types.pyobject)
        return array._getvalue()
    if isinstance(typ, types.BaseTuple):
        items = [_strip(context, builder, t, builder.extract_value(value, i)) for i, t in enumerate(typ.types)]
        out = value
        for i, item in enumerate(items):
            out = builder.insert_value(out, item, i)
        return out
    return value


@intrinsic
def _unowned(typingctx, value):
    def codegen(context, builder, signature, args):
        return _strip(context, builder, signature.args[0], args[0])

    return value(value), codegen


# The kernels call the intrinsics themselves: no overload to type per call.
if not config.DISABLE_JIT:  # type: ignore[attr-defined]
    prefetch, half_to_float, bits_to_float = _prefetch, _half_to_float, _bits_to_float  # type: ignore[assignment]
    fetch_add, unowned = _fetch_add, _unowned  # type: ignore[assignment]
