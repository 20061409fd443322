"""The object graph of the safe file format: encoding, trust, decoding.

An estimator is written as a tree of JSON nodes (``schema.json``) beside its
tensors and numeric arrays (safetensors files). Every node is data: scalars,
containers, arrays, tensors, references to classes and functions by name, and
objects rebuilt from their class and their attribute dictionary. There is no
node that calls anything: an object is made with ``cls.__new__(cls)`` and its
attributes are set directly, without the class's ``__setstate__`` (so not even
a trusted class's unpickling code runs), and the classes and functions a file
names are checked against an allow-list *before* any of them is imported.

Identity is kept: an object met twice (a module shared by a meta-learner and
its adapted estimators, a parameter in a module and in its optimiser) is
written once and referred to by number, so the loaded graph shares what the
saved one shared.
"""

from __future__ import annotations

import collections
import enum
import importlib
import json
import types
from typing import Any

import numpy as np
import torch

__all__: list[str] = []

#: Bumped when a file of the current protocol cannot be read by older code.
PROTOCOL = 1

SCHEMA = "schema.json"
TENSORS = "tensors.safetensors"
ARRAYS = "arrays.safetensors"
SKOPS_DIR = "skops/"

#: Names trusted whatever their module (builtins a fitted graph holds by name).
_TRUSTED_NAMES = frozenset(
    {
        "builtins.print",  # skorch's PrintLog writes with it
        *(f"builtins.{t}" for t in ("dict", "list", "tuple", "set", "frozenset")),
        *(f"builtins.{t}" for t in ("int", "float", "str", "bool", "object")),
        "skorch.history.History",
    }
)

#: Packages whose every class and function is trusted.
_TRUSTED_PACKAGES = ("sklearn_meta",)

#: Packages whose classes are trusted when they derive from one of these bases
#: (named by module and attribute, imported only when a file names them).
_TRUSTED_BASES = {
    "torch.nn": ("torch.nn", "Module"),
    "torch.optim": ("torch.optim", "Optimizer"),
    "torch.optim.lr_scheduler": ("torch.optim.lr_scheduler", "LRScheduler"),
    "skorch.callbacks": ("skorch.callbacks", "Callback"),
    "gymnasium.spaces": ("gymnasium.spaces", "Space"),
}

#: Modules whose functions are trusted (pure tensor functions).
_TRUSTED_FUNCTION_MODULES = ("torch.nn.functional",)

#: numpy bit generators a ``numpy.random.Generator`` may be rebuilt with.
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")

#: Packages whose objects are handed to skops (scikit-learn's safe format).
_SKOPS_PACKAGES = ("sklearn", "scipy")

#: Types skops leaves untrusted by default that the estimators of this package
#: hold: the trees and distance metrics of nearest neighbours (the
#: recommender's), cross-validation splitters and scorers (the search's), all
#: rebuilt by scikit-learn's own code, and numpy dtypes. A scorer's function
#: is a name of its own, checked separately.
_SKOPS_TRUSTED_MODULES = (
    "sklearn.neighbors._kd_tree",
    "sklearn.neighbors._ball_tree",
    "sklearn.metrics._dist_metrics",
    "sklearn.model_selection._split",
    "sklearn.metrics._scorer",
)
_SKOPS_TRUSTED_NAMES = frozenset({"numpy.dtype"})


def skops_trusted_by_default(name: str) -> bool:
    """Whether a type skops reports as untrusted is trusted here by default."""
    module = name.rpartition(".")[0]
    return name in _SKOPS_TRUSTED_NAMES or module in _SKOPS_TRUSTED_MODULES


def _in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _name_of(obj: Any) -> tuple[str, str]:
    """Return the ``(module, qualname)`` under which ``obj`` imports again."""
    module, qualname = getattr(obj, "__module__", None), obj.__qualname__
    if module is None or "<" in qualname:
        raise TypeError(
            f"{obj!r} is not importable by name (it is defined inside a function "
            "or built at run time), so the safe format cannot refer to it."
        )
    try:
        found = _resolve(module, qualname)
    except (ImportError, AttributeError):
        found = None
    if found is not obj:
        raise TypeError(
            f"{obj!r} is not importable as {module}.{qualname}, so the safe format "
            "cannot refer to it."
        )
    return module, qualname


def _resolve(module: str, qualname: str) -> Any:
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _default_trusted(module: str, qualname: str) -> bool:
    """Whether the class or function ``module.qualname`` is trusted by default."""
    if f"{module}.{qualname}" in _TRUSTED_NAMES:
        return True
    if any(_in_package(module, p) for p in _TRUSTED_PACKAGES):
        return True
    if module in _TRUSTED_FUNCTION_MODULES or any(
        _in_package(module, p) for p in _TRUSTED_BASES
    ):
        # Importing a module of these packages runs only the package's own code.
        try:
            obj = _resolve(module, qualname)
        except (ImportError, AttributeError):
            return False
        if isinstance(obj, types.FunctionType):
            return module in _TRUSTED_FUNCTION_MODULES
        if isinstance(obj, type):
            for package, (base_module, base_name) in _TRUSTED_BASES.items():
                if _in_package(module, package):
                    base = getattr(importlib.import_module(base_module), base_name)
                    if issubclass(obj, base):
                        return True
    return False


def _slots(cls: type) -> set[str]:
    """Return the ``__slots__`` names of ``cls`` and its bases."""
    names: set[str] = set()
    for klass in cls.__mro__:
        slots = getattr(klass, "__slots__", ())
        names.update((slots,) if isinstance(slots, str) else slots)
    return names - {"__dict__", "__weakref__"}


def _state_of(obj: Any) -> dict:
    """Return the attributes that make ``obj``: ``__dict__`` and ``__slots__``."""
    if isinstance(obj, torch.optim.Optimizer):
        # The optimiser's own state protocol: no hooks, no patched methods.
        return dict(obj.__getstate__())
    state = dict(vars(obj)) if hasattr(obj, "__dict__") else {}
    for slot in sorted(_slots(type(obj))):
        if hasattr(obj, slot):
            state[slot] = getattr(obj, slot)
    return state


class Encoder:
    """Turn an object graph into JSON nodes, tensors, arrays and skops blobs."""

    def __init__(self):
        self._ids: dict[int, int] = {}
        self._alive: list = []  # what was encoded, so that no id is reused
        self.tensors: dict[str, torch.Tensor] = {}
        self.arrays: dict[str, np.ndarray] = {}
        self.skops: dict[str, bytes] = {}

    def encode(self, obj: Any, path: str = "estimator") -> Any:
        """Return the JSON node of ``obj``; ``path`` names it in error messages."""
        kind = type(obj)
        if obj is None or kind in (bool, int, str):
            return obj
        if kind is float:
            return {"type": "float", "hex": obj.hex()}
        if id(obj) in self._ids:
            return {"type": "ref", "id": self._ids[id(obj)]}
        number = len(self._ids)
        self._ids[id(obj)] = number
        self._alive.append(obj)
        try:
            node = self._encode_new(obj, path)
        except TypeError as exc:
            if str(exc).startswith("Cannot save"):
                raise
            raise TypeError(f"Cannot save {path}: {exc}") from exc
        node["id"] = number
        return node

    def _items(self, values, path: str) -> list:
        return [self.encode(v, f"{path}[{i}]") for i, v in enumerate(values)]

    def _pairs(self, mapping, path: str) -> list:
        return [
            [self.encode(k, f"{path} key"), self.encode(v, f"{path}[{k!r}]")]
            for k, v in mapping.items()
        ]

    def _named(self, kind: str, obj: Any) -> dict:
        module, qualname = _name_of(obj)
        return {"type": kind, "module": module, "name": qualname}

    def _encode_new(self, obj: Any, path: str) -> dict:
        kind = type(obj)
        if kind in (list, tuple, set, frozenset):
            values = sorted(obj, key=repr) if kind in (set, frozenset) else obj
            return {"type": kind.__name__, "items": self._items(values, path)}
        if kind is dict or kind is collections.OrderedDict:
            return {"type": kind.__name__, "items": self._pairs(obj, path)}
        if kind is collections.defaultdict:
            factory = obj.default_factory
            return {
                "type": "defaultdict",
                "factory": None if factory is None else self.encode(factory, path),
                "items": self._pairs(obj, path),
            }
        if isinstance(obj, torch.Tensor):
            return self._tensor(obj)
        if kind is np.ndarray:
            return self._array(obj, path)
        if kind is np.ma.MaskedArray:
            return {
                "type": "masked_array",
                "data": self.encode(np.ma.getdata(obj), path),
                "mask": self.encode(np.ma.getmaskarray(obj), path),
                "fill_value": self.encode(obj.fill_value, path),
            }
        if isinstance(obj, np.generic):
            return {
                "type": "np_scalar",
                "dtype": obj.dtype.str,
                "value": self.encode(obj.item(), path),
            }
        if isinstance(obj, np.dtype):
            return {"type": "np_dtype", "dtype": _dtype_name(obj)}
        if kind is torch.device:
            return {"type": "device", "value": str(obj)}
        if kind is torch.dtype:
            return {"type": "torch_dtype", "value": str(obj).removeprefix("torch.")}
        if kind is torch.Size:
            return {"type": "size", "items": list(obj)}
        if kind is np.random.RandomState:
            return {"type": "random_state", "state": self.encode(obj.get_state(), path)}
        if kind is np.random.Generator:
            state = obj.bit_generator.state
            return {"type": "generator", "state": self.encode(state, path)}
        if isinstance(obj, type):
            return self._named("class", obj)
        if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType)):
            return self._named("function", obj)
        if any(_in_package(kind.__module__, p) for p in _SKOPS_PACKAGES):
            return self._skops(obj, path)
        if isinstance(obj, enum.Enum):
            return {**self._named("enum", kind), "value": self.encode(obj.value, path)}
        if isinstance(obj, tuple) and hasattr(kind, "_fields"):
            return {**self._named("namedtuple", kind), "items": self._items(obj, path)}
        if isinstance(obj, (str, int, float, tuple, set, frozenset, bytes)) or (
            isinstance(obj, (dict, list)) and not hasattr(obj, "__dict__")
        ):
            raise TypeError(f"instances of {kind!r} are not supported.")
        if not hasattr(obj, "__dict__") and not _slots(kind):
            raise TypeError(
                f"instances of {kind!r} hold no attribute dictionary, so the safe "
                "format cannot rebuild them."
            )
        settle = getattr(obj, "_settle", None)
        if callable(settle):
            settle()  # lazily computed state, computed now: a smaller file
        node = self._named("object", kind)
        node["state"] = {
            key: self.encode(value, f"{path}.{key}")
            for key, value in _state_of(obj).items()
        }
        if isinstance(obj, list):
            node["list_items"] = self._items(obj, path)
        elif isinstance(obj, dict):
            node["dict_items"] = self._pairs(obj, path)
        return node

    def _tensor(self, tensor: torch.Tensor) -> dict:
        if type(tensor) not in (torch.Tensor, torch.nn.Parameter) or tensor.is_sparse:
            raise TypeError(f"tensors of type {type(tensor)!r} are not supported.")
        key = f"t{len(self.tensors)}"
        # A copy of its own: safetensors refuses tensors that share memory.
        self.tensors[key] = tensor.detach().to("cpu", copy=True).contiguous()
        return {
            "type": "parameter" if type(tensor) is torch.nn.Parameter else "tensor",
            "key": key,
            "device": str(tensor.device),
            "requires_grad": tensor.requires_grad,
            # The layout changes which kernels run, and so the last bits of
            # what a convolution computes: keep it.
            "stride": _layout(tensor),
        }

    def _array(self, array: np.ndarray, path: str) -> dict:
        node = {"type": "ndarray", "dtype": _dtype_name(array.dtype)}
        if array.dtype.kind in "biuf" and array.dtype.itemsize <= 8:
            key = f"a{len(self.arrays)}"
            native = array.astype(array.dtype.newbyteorder("="), copy=False)
            self.arrays[key] = np.ascontiguousarray(native)
            node["key"] = key
            flags = array.flags
            node["fortran"] = bool(flags.f_contiguous and not flags.c_contiguous)
            return node
        if array.dtype.kind not in "UO":
            raise TypeError(f"arrays of dtype {array.dtype} are not supported.")
        node["shape"] = list(array.shape)
        node["items"] = self._items(array.ravel().tolist(), path)
        return node

    def _skops(self, obj: Any, path: str) -> dict:
        skops_io = _import_skops(f"saving {path} (a {type(obj).__module__} object)")
        member = f"{SKOPS_DIR}{len(self.skops)}.skops"
        self.skops[member] = skops_io.dumps(obj)
        return {"type": "skops", "member": member}


def _layout(tensor: torch.Tensor) -> list[int] | None:
    """Return the strides of ``tensor`` when they are not the contiguous ones.

    Only dense layouts (a permutation of the dimensions, such as channels-last
    convolution weights) are kept; others load contiguous.
    """
    stride, size = tensor.stride(), tensor.shape
    if tensor.numel() == 0 or stride == torch.empty(size, device="meta").stride():
        return None
    span = sum((n - 1) * s for n, s in zip(size, stride)) + 1
    if min(stride, default=1) <= 0 or span != tensor.numel():
        return None
    return list(stride)


def _dtype_name(dtype: np.dtype) -> str:
    if dtype.fields is not None or dtype.subdtype is not None:
        raise TypeError(f"structured dtype {dtype} is not supported.")
    return dtype.str


def _import_skops(what: str):
    try:
        import skops.io
    except ImportError as exc:
        raise ImportError(
            f"{what} needs skops, scikit-learn's safe persistence package: "
            "pip install skops (or the 'selection' extra of sklearn-meta)."
        ) from exc
    return skops.io


def named_types(node: Any, found: set[tuple[str, str]] | None = None) -> set:
    """Every ``(module, qualname)`` a schema tree names, without importing any."""
    found = set() if found is None else found
    if isinstance(node, list):
        for item in node:
            named_types(item, found)
    elif isinstance(node, dict):
        if node.get("type") in ("class", "function", "object", "namedtuple", "enum"):
            found.add((str(node["module"]), str(node["name"])))
        for value in node.values():
            named_types(value, found)
    return found


def untrusted_names(names: set, trusted: set[str]) -> list[str]:
    """Return the names of ``names`` trusted neither by default nor by the user."""
    return sorted(
        f"{module}.{qualname}"
        for module, qualname in names
        if f"{module}.{qualname}" not in trusted
        and not _default_trusted(module, qualname)
    )


class Decoder:
    """Rebuild the object graph of :class:`Encoder` from trusted nodes.

    Parameters
    ----------
    tensors, arrays : dict
        The loaded safetensors contents.
    skops_blobs : dict of str to bytes
        The skops members of the archive.
    skops_trusted : list of str
        The names the user trusted, handed to skops for its own check.
    """

    def __init__(self, tensors, arrays, skops_blobs, skops_trusted):
        self._tensors = tensors
        self._arrays = arrays
        self._skops = skops_blobs
        self._skops_trusted = skops_trusted
        self._objects: dict[int, Any] = {}
        self.moved_to_cpu: set[str] = set()

    def decode(self, node: Any) -> Any:
        """Return the object of ``node``."""
        if node is None or isinstance(node, (bool, int, str)):
            return node
        if not isinstance(node, dict) or "type" not in node:
            raise ValueError(f"Malformed node in the file: {str(node)[:80]!r}.")
        kind = node["type"]
        if kind == "float":
            return float.fromhex(node["hex"])
        if kind == "ref":
            try:
                return self._objects[node["id"]]
            except KeyError:
                raise ValueError(
                    f"The file refers to object {node['id']} before it is complete."
                ) from None
        method = getattr(self, f"_decode_{kind}", None)
        if method is None:
            raise ValueError(f"Unknown node type {kind!r} in the file.")
        return method(node)

    def _keep(self, node: dict, obj: Any) -> Any:
        self._objects[node["id"]] = obj
        return obj

    def _decode_list(self, node):
        out = self._keep(node, [])
        out.extend(self.decode(v) for v in node["items"])
        return out

    def _decode_tuple(self, node):
        return self._keep(node, tuple(self.decode(v) for v in node["items"]))

    def _decode_set(self, node):
        out = self._keep(node, set())
        out.update(self.decode(v) for v in node["items"])
        return out

    def _decode_frozenset(self, node):
        return self._keep(node, frozenset(self.decode(v) for v in node["items"]))

    def _fill(self, mapping: dict, pairs: list) -> dict:
        for key, value in pairs:
            mapping[self.decode(key)] = self.decode(value)
        return mapping

    def _decode_dict(self, node):
        return self._fill(self._keep(node, {}), node["items"])

    def _decode_OrderedDict(self, node):
        return self._fill(self._keep(node, collections.OrderedDict()), node["items"])

    def _decode_defaultdict(self, node):
        out = self._keep(node, collections.defaultdict())
        if node["factory"] is not None:
            out.default_factory = self.decode(node["factory"])
        return self._fill(out, node["items"])

    def _decode_tensor(self, node):
        tensor = self._tensors[node["key"]]
        if node.get("stride") is not None:
            tensor = _with_strides(tensor, [int(s) for s in node["stride"]])
        device = self._device(node["device"])
        if device.type != "cpu":
            tensor = tensor.to(device)
        if node["requires_grad"]:
            tensor.requires_grad_(True)
        if node["type"] == "parameter":
            tensor = torch.nn.Parameter(tensor, requires_grad=node["requires_grad"])
        return self._keep(node, tensor)

    _decode_parameter = _decode_tensor

    def _decode_ndarray(self, node):
        dtype = np.dtype(node["dtype"])
        if "key" in node:
            array = self._arrays[node["key"]].astype(dtype, copy=False)
            if node["fortran"]:
                array = np.asfortranarray(array)
        else:
            items = [self.decode(v) for v in node["items"]]
            array = np.empty(len(items), dtype=dtype)
            array[:] = items if dtype.kind != "O" else _object_items(items)
            array = array.reshape(node["shape"])
        return self._keep(node, array)

    def _decode_masked_array(self, node):
        data, mask = self.decode(node["data"]), self.decode(node["mask"])
        fill_value = self.decode(node["fill_value"])
        array = np.ma.MaskedArray(data, mask=mask, fill_value=fill_value)
        return self._keep(node, array)

    def _decode_np_scalar(self, node):
        scalar_type = np.dtype(node["dtype"]).type
        return self._keep(node, scalar_type(self.decode(node["value"])))

    def _decode_np_dtype(self, node):
        return self._keep(node, np.dtype(node["dtype"]))

    def _decode_device(self, node):
        return self._keep(node, self._device(node["value"]))

    def _device(self, name: str) -> torch.device:
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            self.moved_to_cpu.add(name)
            return torch.device("cpu")
        return device

    def _decode_torch_dtype(self, node):
        dtype = getattr(torch, str(node["value"]), None)
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"Unknown torch dtype {node['value']!r} in the file.")
        return self._keep(node, dtype)

    def _decode_size(self, node):
        return self._keep(node, torch.Size([int(v) for v in node["items"]]))

    def _decode_random_state(self, node):
        state = np.random.RandomState()
        state.set_state(self.decode(node["state"]))
        return self._keep(node, state)

    def _decode_generator(self, node):
        state = self.decode(node["state"])
        name = state.get("bit_generator") if isinstance(state, dict) else None
        if name not in _BIT_GENERATORS:
            raise ValueError(f"Unknown numpy bit generator {name!r} in the file.")
        bits = getattr(np.random, name)()
        bits.state = state
        return self._keep(node, np.random.Generator(bits))

    def _decode_class(self, node):
        return self._keep(node, _resolve(node["module"], node["name"]))

    _decode_function = _decode_class

    def _decode_enum(self, node):
        cls = _resolve(node["module"], node["name"])
        if not (isinstance(cls, type) and issubclass(cls, enum.Enum)):
            raise ValueError(f"{node['module']}.{node['name']} is not an enum.")
        return self._keep(node, cls(self.decode(node["value"])))

    def _decode_namedtuple(self, node):
        cls = _resolve(node["module"], node["name"])
        if not (isinstance(cls, type) and issubclass(cls, tuple)):
            raise ValueError(f"{node['module']}.{node['name']} is not a named tuple.")
        items = [self.decode(v) for v in node["items"]]
        return self._keep(node, tuple.__new__(cls, items))

    def _decode_object(self, node):
        cls = _resolve(node["module"], node["name"])
        if not isinstance(cls, type):
            raise ValueError(f"{node['module']}.{node['name']} is not a class.")
        obj = self._keep(node, cls.__new__(cls))
        state = {key: self.decode(value) for key, value in node["state"].items()}
        if isinstance(obj, torch.optim.Optimizer) and _in_package(
            cls.__module__, "torch.optim"
        ):
            # torch's own: restores the hooks and step wrappers of construction.
            obj.__setstate__(state)
        else:
            slots = _slots(cls)
            for key, value in state.items():
                if key in slots:
                    object.__setattr__(obj, key, value)
                else:
                    obj.__dict__[key] = value
        if "list_items" in node:
            list.extend(obj, (self.decode(v) for v in node["list_items"]))
        if "dict_items" in node:
            for key, value in node["dict_items"]:
                dict.__setitem__(obj, self.decode(key), self.decode(value))
        return obj

    def _decode_skops(self, node):
        skops_io = _import_skops("loading this file")
        blob = self._skops[node["member"]]
        trusted = [
            name
            for name in skops_io.get_untrusted_types(data=blob)
            if name in self._skops_trusted or skops_trusted_by_default(name)
        ]
        return self._keep(node, skops_io.loads(blob, trusted=trusted))


def _with_strides(tensor: torch.Tensor, stride: list[int]) -> torch.Tensor:
    """``tensor`` laid out with ``stride`` (if that layout holds it exactly)."""
    if len(stride) != tensor.dim():
        raise ValueError("A tensor's strides in the file do not match its shape.")
    out = torch.empty_strided(tensor.shape, stride, dtype=tensor.dtype)
    out.copy_(tensor)
    return out if torch.equal(out, tensor) else tensor


def _object_items(items: list) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def dumps_schema(root: Any, meta: dict) -> bytes:
    """Serialize the schema document (``meta`` plus the root node)."""
    return json.dumps({**meta, "root": root}, separators=(",", ":")).encode()
