// SharedBuffer and SharedBufferView (what a memoryview that crossed is over)
// as Python types, and what a memoryview crosses as.
#include <cstring>
#include <interpool/shared_buffer.hpp>
#include <type_traits>
#include <vector>

#include "core/interpreter.hpp"
#include "core/py_value.hpp"
#include "python/engine_object.hpp"

namespace interpool::python {
namespace {

static_assert(std::is_same_v<Py_ssize_t, std::ptrdiff_t>,
              "BufferLayout's shape and strides are handed to Py_buffer as they are");

// ---------------------------------------------------------------------------
// SharedBuffer
// ---------------------------------------------------------------------------

PyObject* SharedBuffer_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"nbytes", nullptr};
  Py_ssize_t nbytes;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "n:SharedBuffer", const_cast<char**>(kwlist),
                                   &nbytes))
    return nullptr;
  if (nbytes < 0) return PyErr_Format(PyExc_ValueError, "nbytes must be >= 0, not %zd", nbytes);
  std::shared_ptr<SharedBuffer> made;
  try {
    made = SharedBuffer::create(static_cast<std::size_t>(nbytes));
  } catch (const std::bad_alloc&) {
    return PyErr_Format(PyExc_MemoryError,
                        "cannot allocate a SharedBuffer of %zd bytes: the system refused that much "
                        "memory",
                        nbytes);
  } catch (...) {
    return raise_engine_error();
  }
  return wrap(type, std::move(made));
}

// SharedBuffer.from_bytes(data): a new buffer holding a copy of any bytes-like object.
PyObject* SharedBuffer_from_bytes(PyObject* cls, PyObject* data) {
  Py_buffer view;
  if (PyObject_GetBuffer(data, &view, PyBUF_FULL_RO) < 0) return nullptr;
  std::shared_ptr<SharedBuffer> buffer;
  try {
    buffer = SharedBuffer::create(static_cast<std::size_t>(view.len));
  } catch (...) {
    PyBuffer_Release(&view);
    return raise_engine_error();
  }
  int rc = 0;
  if (PyBuffer_IsContiguous(&view, 'C')) {
    if (view.len >= (1 << 20)) {
      GilRelease unlocked;  // the exporter stays pinned by `view`
      std::memcpy(buffer->data(), view.buf, static_cast<std::size_t>(view.len));
    } else if (view.len > 0) {
      std::memcpy(buffer->data(), view.buf, static_cast<std::size_t>(view.len));
    }
  } else {
    rc = PyBuffer_ToContiguous(buffer->data(), &view, view.len, 'C');
  }
  PyBuffer_Release(&view);
  if (rc < 0) return nullptr;
  return wrap(reinterpret_cast<PyTypeObject*>(cls), std::move(buffer));
}

int SharedBuffer_getbuffer(PyObject* self, Py_buffer* view, int flags) {
  SharedBuffer& b = engine<SharedBuffer>(self);
  return PyBuffer_FillInfo(view, self, b.data(), static_cast<Py_ssize_t>(b.size()), 0, flags);
}

Py_ssize_t SharedBuffer_length(PyObject* self) {
  return static_cast<Py_ssize_t>(engine<SharedBuffer>(self).size());
}

// Indexing and slicing are memoryview's: buf[i] is an int, buf[a:b] a
// memoryview of those bytes (no copy), and errors are memoryview's too.
PyObject* SharedBuffer_subscript(PyObject* self, PyObject* key) {
  PyObject* view = PyMemoryView_FromObject(self);
  if (!view) return nullptr;
  PyObject* r = PyObject_GetItem(view, key);
  Py_DECREF(view);
  return r;
}

int SharedBuffer_ass_subscript(PyObject* self, PyObject* key, PyObject* value) {
  PyObject* view = PyMemoryView_FromObject(self);
  if (!view) return -1;
  int rc = value ? PyObject_SetItem(view, key, value) : PyObject_DelItem(view, key);
  Py_DECREF(view);
  return rc;
}

PyObject* SharedBuffer_iter(PyObject* self) {
  PyObject* view = PyMemoryView_FromObject(self);
  if (!view) return nullptr;
  PyObject* it = PyObject_GetIter(view);
  Py_DECREF(view);
  return it;
}

PyObject* SharedBuffer_cast(PyObject* self, PyObject* args, PyObject* kwargs) {
  PyObject* view = PyMemoryView_FromObject(self);
  if (!view) return nullptr;
  PyObject* cast = PyObject_GetAttrString(view, "cast");
  Py_DECREF(view);
  if (!cast) return nullptr;
  PyObject* r = PyObject_Call(cast, args, kwargs);
  Py_DECREF(cast);
  return r;
}

PyObject* SharedBuffer_get_nbytes(PyObject* self, void*) {
  return PyLong_FromSize_t(engine<SharedBuffer>(self).size());
}

PyObject* SharedBuffer_repr(PyObject* self) {
  SharedBuffer& b = engine<SharedBuffer>(self);
  return PyUnicode_FromFormat("<interpool.SharedBuffer id=%lld nbytes=%zu>", (long long)b.id(),
                              b.size());
}

PyMethodDef SharedBuffer_methods[] = {
    {"from_bytes", SharedBuffer_from_bytes, METH_O | METH_CLASS,
     "from_bytes($cls, data, /)\n--\n\n"
     "A new SharedBuffer holding a copy of data (any bytes-like object: bytes, bytearray, "
     "memoryview, array, ...)."},
    {"cast", INTERPOOL_METH(SharedBuffer_cast), METH_VARARGS | METH_KEYWORDS,
     "cast($self, /, format, shape=...)\n--\n\n"
     "memoryview(self).cast(format, shape): a typed view of the bytes, e.g. cast('i') for C ints, "
     "cast('d', [rows, cols]) for a 2-D table of doubles."},
    {"__reduce__", INTERPOOL_METH(engine_reduce<SharedBuffer>), METH_NOARGS,
     "Pickle as a reference to the same bytes (no copy)."},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef SharedBuffer_getset[] = {
    {"nbytes", SharedBuffer_get_nbytes, nullptr, "The size in bytes (len() too).", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

}  // namespace

EngineType<SharedBuffer> SharedBuffer_type({
    .name = "interpool._interpool.SharedBuffer",
    .doc = "SharedBuffer(nbytes)\n--\n\n"
           "nbytes zero-filled bytes that every interpreter of the process shares: passed to a "
           "worker (Executor arguments, shared=, queues, prepare_main, call), it crosses as a "
           "reference, and writes on either side are seen on the other. It has the buffer "
           "protocol: memoryview(buf), buf.cast('i') for typed views, buf[a:b] for a view of "
           "some bytes (no copy). The memory lives while any SharedBuffer or memoryview of it "
           "does, in any interpreter. Synchronise writers with interpool.Lock and friends.",
    .tp_new = SharedBuffer_new,
    .repr = SharedBuffer_repr,
    .methods = SharedBuffer_methods,
    .getset = SharedBuffer_getset,
    .extra = {{Py_tp_iter, reinterpret_cast<void*>(SharedBuffer_iter)},
              {Py_mp_length, reinterpret_cast<void*>(SharedBuffer_length)},
              {Py_mp_subscript, reinterpret_cast<void*>(SharedBuffer_subscript)},
              {Py_mp_ass_subscript, reinterpret_cast<void*>(SharedBuffer_ass_subscript)},
              {Py_bf_getbuffer, reinterpret_cast<void*>(SharedBuffer_getbuffer)}},
});

namespace {

// ---------------------------------------------------------------------------
// SharedBufferView: the exporter under a memoryview that crossed
// ---------------------------------------------------------------------------

// The checks memoryview's own getbuffer makes, on the layout that crossed.
int SharedBufferView_getbuffer(PyObject* self, Py_buffer* view, int flags) {
  const SharedBufferView& v = engine<SharedBufferView>(self);
  const BufferLayout& l = v.layout();
  if ((flags & PyBUF_WRITABLE) == PyBUF_WRITABLE && l.readonly) {
    PyErr_SetString(PyExc_BufferError, "the view is read-only");
    return -1;
  }
  const bool c = l.c_contiguous(), f = l.f_contiguous();
  if (((flags & PyBUF_C_CONTIGUOUS) == PyBUF_C_CONTIGUOUS && !c) ||
      ((flags & PyBUF_F_CONTIGUOUS) == PyBUF_F_CONTIGUOUS && !f) ||
      ((flags & PyBUF_ANY_CONTIGUOUS) == PyBUF_ANY_CONTIGUOUS && !c && !f) ||
      ((flags & PyBUF_STRIDES) != PyBUF_STRIDES && !c)) {
    PyErr_SetString(PyExc_BufferError, "the view is not contiguous in the way asked for");
    return -1;
  }
  const bool format = (flags & PyBUF_FORMAT) == PyBUF_FORMAT;
  const bool shape = (flags & PyBUF_ND) == PyBUF_ND;
  if (!shape && format) {
    PyErr_SetString(PyExc_BufferError,
                    "cannot cast to unsigned bytes if the format flag is present");
    return -1;
  }
  view->obj = Py_NewRef(self);
  view->buf = v.first();
  view->len = static_cast<Py_ssize_t>(l.nbytes());
  view->readonly = l.readonly;
  view->itemsize = static_cast<Py_ssize_t>(l.itemsize);
  view->format = format ? const_cast<char*>(l.format.c_str()) : nullptr;
  const bool scalar = l.shape.empty();
  if (shape) {
    view->ndim = static_cast<int>(l.shape.size());
    view->shape = scalar ? nullptr : const_cast<Py_ssize_t*>(l.shape.data());
  } else {
    view->ndim = 1;
    view->shape = nullptr;
  }
  const bool strides = (flags & PyBUF_STRIDES) == PyBUF_STRIDES;
  view->strides = strides && shape && !scalar ? const_cast<Py_ssize_t*>(l.strides.data()) : nullptr;
  view->suboffsets = nullptr;
  view->internal = nullptr;
  return 0;
}

PyObject* SharedBufferView_get_buffer(PyObject* self, void*) {
  const SharedTypes* types = shared_types_of(Py_TYPE(self));
  if (!types) return PyErr_Format(PyExc_SystemError, "interpool: SharedBufferView without types");
  return wrap(types->buffer, engine<SharedBufferView>(self).buffer());
}

PyObject* SharedBufferView_repr(PyObject* self) {
  const SharedBufferView& v = engine<SharedBufferView>(self);
  return PyUnicode_FromFormat("<interpool.SharedBufferView of SharedBuffer id=%lld offset=%zu>",
                              (long long)v.buffer()->id(), v.layout().offset);
}

PyGetSetDef SharedBufferView_getset[] = {{"buffer", SharedBufferView_get_buffer, nullptr,
                                          "The SharedBuffer these bytes are in.", nullptr},
                                         {nullptr, nullptr, nullptr, nullptr, nullptr}};

// Made only by shared_from_handle; == and hash() are object's (identity).
}  // namespace

EngineType<SharedBufferView, Equality::Base> SharedBufferView_type({
    .name = "interpool._interpool.SharedBufferView",
    .doc = "What a memoryview that crossed interpreters is a view of: some items of a "
           "SharedBuffer, with their format and shape. `.buffer` is the whole SharedBuffer.",
    .repr = SharedBufferView_repr,
    .getset = SharedBufferView_getset,
    .flags = Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .extra = {{Py_bf_getbuffer, reinterpret_cast<void*>(SharedBufferView_getbuffer)}},
});

namespace {

// A memoryview's layout relative to `base` (the start of the buffer it is in).
BufferLayout layout_of(const Py_buffer& view, const std::byte* base) {
  BufferLayout layout;
  layout.offset = static_cast<std::size_t>(static_cast<const std::byte*>(view.buf) - base);
  layout.itemsize = static_cast<std::size_t>(view.itemsize);
  layout.format = view.format ? view.format : "B";
  layout.shape.assign(view.shape, view.shape + view.ndim);
  if (view.strides) {
    layout.strides.assign(view.strides, view.strides + view.ndim);
  } else {
    layout = BufferLayout::contiguous(layout.offset, layout.itemsize, layout.format,
                                      std::move(layout.shape));
  }
  layout.readonly = view.readonly != 0;
  return layout;
}

}  // namespace

int memoryview_to_handle(PyObject* obj, std::shared_ptr<Shareable>* out) {
  Py_buffer view;
  if (PyObject_GetBuffer(obj, &view, PyBUF_FULL_RO) < 0) return -1;  // e.g. released
  // Over a SharedBuffer (or a view that crossed): the same bytes, no copy.
  std::shared_ptr<SharedBuffer> shared;
  PyObject* base = PyMemoryView_GET_BUFFER(obj)->obj;
  if (base) {
    if (const SharedTypes* t = shared_types_of(Py_TYPE(base))) {
      if (PyObject_TypeCheck(base, t->buffer))
        shared = engine_ptr<SharedBuffer>(base);
      else if (PyObject_TypeCheck(base, t->buffer_view))
        shared = engine<SharedBufferView>(base).buffer();
    }
  }
  int rc = 1;
  try {
    if (shared) {
      *out = std::make_shared<SharedBufferView>(shared, layout_of(view, shared->data()));
    } else {
      // Anything else is copied: its owner lives in this interpreter only.
      auto copy = SharedBuffer::create(static_cast<std::size_t>(view.len));
      if (PyBuffer_ToContiguous(copy->data(), &view, view.len, 'C') < 0) throw PythonErrorSet();
      std::vector<std::ptrdiff_t> shape(view.shape, view.shape + view.ndim);
      *out = std::make_shared<SharedBufferView>(
          copy, BufferLayout::contiguous(0, static_cast<std::size_t>(view.itemsize),
                                         view.format ? view.format : "B", std::move(shape),
                                         view.readonly != 0));
    }
  } catch (...) {
    raise_engine_error();
    rc = -1;
  }
  PyBuffer_Release(&view);
  return rc;
}

}  // namespace interpool::python
