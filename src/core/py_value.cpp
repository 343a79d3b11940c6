#include "core/py_value.hpp"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <cstring>
#include <functional>
#include <vector>

#include "core/packed.hpp"
#include "core/py_ref.hpp"

namespace interpool {

namespace {

std::atomic<HandleCodec*> g_codec{nullptr};

// The handles of the pickle that to_value is making on this thread, and of the
// one that to_python is loading (see capture_handle).
thread_local std::vector<Handle>* t_capturing = nullptr;
thread_local const std::vector<Handle>* t_loading = nullptr;

// Sets a thread-local pointer for a scope.
template <class T>
class ScopedSet {
 public:
  ScopedSet(T*& slot, T* value) : slot_(slot), saved_(std::exchange(slot, value)) {}
  ScopedSet(const ScopedSet&) = delete;
  ScopedSet& operator=(const ScopedSet&) = delete;
  ~ScopedSet() { slot_ = saved_; }

 private:
  T*& slot_;
  T* saved_;
};

std::string_view type_name(PyObject* obj) {
  const char* name = Py_TYPE(obj)->tp_name;
  const char* dot = nullptr;
  for (const char* c = name; *c; ++c)
    if (*c == '.') dot = c;
  return dot ? std::string_view(dot + 1) : std::string_view(name);
}

bool utf8_of(PyObject* str, std::string& out) {
  Py_ssize_t size = 0;
  if (const char* data = PyUnicode_AsUTF8AndSize(str, &size)) {
    out.assign(data, static_cast<std::size_t>(size));
    return true;
  }
  // Lone surrogates: keep them, as the "surrogatepass" scheme does.
  PyErr_Clear();
  Ref bytes(PyUnicode_AsEncodedString(str, "utf-8", "surrogatepass"));
  if (!bytes) return false;
  out.assign(PyBytes_AS_STRING(bytes.p), static_cast<std::size_t>(PyBytes_GET_SIZE(bytes.p)));
  return true;
}

// ---------------------------------------------------------------------------
// Python -> Value
// ---------------------------------------------------------------------------

// The references an object has while put() looks at it, when one place holds
// it: that place's and the one put()'s caller holds. Only an object with more
// can be met again, so only those are remembered: the containers of a plain
// tree cost no lookup.
constexpr Py_ssize_t kOnePlace = 2;

// The size of this thread's last buffer, which the next one gets at once:
// the chunks of one map are alike, and a buffer that grows by doubling copies
// itself each time (ToValueMemory gives back what was not used). Up to a
// limit, so that one large value does not make every small one after it
// allocate as much.
thread_local std::size_t t_packed_before = 0;
constexpr std::size_t kMostExpected = std::size_t{1} << 20;

std::size_t pointer_hash(const PyObject* p) {
  // Objects are 16-byte aligned: the low bits say nothing.
  return static_cast<std::size_t>(
      (reinterpret_cast<std::uintptr_t>(p) >> 4) * 0x9E3779B97F4A7C15ull >> 32);
}

// A scalar at the top, alone: a plain value, as cheap as it was before the
// flat form (a buffer is only worth it for what holds other values).
bool top_scalar(PyObject* obj, Value& out) {
  if (obj == Py_None) {
    out = None{};
    return true;
  }
  PyTypeObject* type = Py_TYPE(obj);
  if (type == &PyBool_Type) {
    out = obj == Py_True;
  } else if (type == &PyLong_Type) {
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (overflow) {
      Ref hex(PyNumber_ToBase(obj, 16));
      if (!hex) throw PythonErrorSet();
      BigInt b;
      if (!utf8_of(hex.p, b.hex)) throw PythonErrorSet();
      out = std::move(b);
    } else {
      if (v == -1 && PyErr_Occurred()) throw PythonErrorSet();
      out = static_cast<std::int64_t>(v);
    }
  } else if (type == &PyFloat_Type) {
    out = PyFloat_AS_DOUBLE(obj);
  } else if (type == &PyUnicode_Type) {
    Str s;
    if (!utf8_of(obj, s.utf8)) throw PythonErrorSet();
    out = std::move(s);
  } else if (type == &PyBytes_Type) {
    out =
        Bytes{std::string(PyBytes_AS_STRING(obj), static_cast<std::size_t>(PyBytes_GET_SIZE(obj)))};
  } else if (type == &PyComplex_Type) {
    out = std::complex<double>(PyComplex_RealAsDouble(obj), PyComplex_ImagAsDouble(obj));
  } else {
    return false;
  }
  return true;
}

// A new Pickler of this interpreter writing into a new io.BytesIO (*file): the
// face's, which sends functions by value (*face set), or pickle.Pickler.
// nullptr with an error set.
PyObject* new_pickler(PyObject** file, bool* face) {
  Ref cls;
  HandleCodec* codec = g_codec.load(std::memory_order_acquire);
  if (codec && codec->pickler) {
    cls.p = codec->pickler();
    if (!cls && PyErr_Occurred()) return nullptr;
  }
  *face = cls.p != nullptr;
  if (!cls) {
    Ref module(PyImport_ImportModule("pickle"));
    if (!module) return nullptr;
    cls.p = PyObject_GetAttrString(module.p, "Pickler");
    if (!cls) return nullptr;
  }
  Ref io(PyImport_ImportModule("io"));
  if (!io) return nullptr;
  Ref out(PyObject_CallMethod(io.p, "BytesIO", nullptr));
  if (!out) return nullptr;
  PyObject* pickler = PyObject_CallFunction(cls.p, "Oi", out.p, 5);
  if (pickler) *file = out.release();
  return pickler;
}

// The error raised while pickling, as why `obj` cannot cross: "it does not
// pickle (TypeError: cannot pickle ...)" and what to do. An interruption
// (Ctrl-C, SystemExit) or a MemoryError says nothing about the object: it is
// raised again as it is (PythonErrorSet).
std::string pickling_failure(PyObject* obj, bool face_pickler) {
  Ref exc(PyErr_GetRaisedException());
  if (exc && (!PyObject_TypeCheck(exc.p, reinterpret_cast<PyTypeObject*>(PyExc_Exception)) ||
              PyErr_GivenExceptionMatches(exc.p, PyExc_MemoryError))) {
    PyErr_SetRaisedException(exc.release());
    throw PythonErrorSet();
  }
  std::string why = "pickling failed";
  if (exc) {  // "TypeError: cannot pickle ...": the type says as much as the text
    const std::string text = to_utf8(exc.p);
    why = std::string(type_name(exc.p)) + (text.empty() ? "" : ": " + text);
  }
  std::string hint;
  if (PyFunction_Check(obj)) {
    if (!face_pickler)  // (a face's pickler sends functions by value, and says why not)
      hint =
          "; lambdas, closures and nested functions cannot cross interpreters: define the "
          "function at module level";
  } else {
    hint =
        "; pass data that pickles, or plain values (None, bool, int, float, complex, str, "
        "bytes, tuple, list, dict, set)";
  }
  return "it does not pickle (" + why + ")" + hint;
}

// Pickles `batch` (a list of n objects) with the crossing's pickler (made on
// first use) as the next batch of its stream. False, with the error set, if
// the dump failed: what the pickler wrote and what its memo holds belong to a
// pickle that will not be read, so it is dropped and the next batch starts a
// run with a pickler of its own.
bool dump_batch(detail::ToValueMemory& memory, PickleStream& stream, PyObject* batch,
                std::size_t n) {
  if (!memory.dump) {
    PyObject* file = nullptr;
    Ref pickler(new_pickler(&file, &memory.face_pickler));
    if (!pickler) return false;
    memory.file = file;
    memory.dump = PyObject_GetAttrString(pickler.p, "dump");
    if (!memory.dump) {
      memory.drop_pickler();
      return false;
    }
    if (stream.runs.empty() || stream.runs.back() != stream.batches.size())
      stream.runs.push_back(stream.batches.size());
  }
  Ref done;
  {
    ScopedSet capturing(t_capturing, &stream.handles);
    done.p = PyObject_CallOneArg(memory.dump, batch);
  }
  // The batch's bytes, from the pickler's file into the stream; the file
  // emptied for the next.
  Ref written(done ? PyObject_CallMethod(memory.file, "getbuffer", nullptr) : nullptr);
  Py_buffer view;
  if (!written || PyObject_GetBuffer(written.p, &view, PyBUF_SIMPLE) < 0) {
    PyObject* exc = PyErr_GetRaisedException();  // (freeing the memo may run code)
    memory.drop_pickler();
    PyErr_SetRaisedException(exc);
    return false;
  }
  try {
    stream.batches.reserve(stream.batches.size() + 1);  // (recording it cannot fail after)
    stream.bytes.append(static_cast<const char*>(view.buf), static_cast<std::size_t>(view.len));
  } catch (...) {
    // The pickler's memo has what the stream has not: it cannot write the next batch.
    PyBuffer_Release(&view);
    memory.drop_pickler();
    throw;
  }
  PyBuffer_Release(&view);
  stream.batches.push_back(PickleStream::Batch{stream.bytes.size(), stream.objects});
  stream.objects += n;
  Ref released(PyObject_CallMethod(written.p, "release", nullptr));
  Ref at(released ? PyObject_CallMethod(memory.file, "seek", "i", 0) : nullptr);
  Ref cut(at ? PyObject_CallMethod(memory.file, "truncate", nullptr) : nullptr);
  if (!cut) {
    // The stream has the batch; a file that cannot be emptied cannot write the next.
    PyObject* exc = PyErr_GetRaisedException();
    memory.drop_pickler();
    PyErr_SetRaisedException(exc);
    throw PythonErrorSet();
  }
  return true;
}

// One value of a crossing, written into the crossing's buffer: its place for
// messages, and what the crossing remembers (ToValue's memory).
class Converter {
 public:
  // finding_failure: the objects with no flat form are pickled one by one, as
  // they are met, to find the one that made their batch fail, and its place.
  Converter(std::string_view where, const ToValueOptions& options, detail::ToValueMemory& memory,
            bool finding_failure = false)
      : where_(where),
        options_(options),
        memory_(memory),
        data_(*memory.data),
        finding_failure_(finding_failure) {}

  // A value the caller gives: remembered whatever its count (it may be given
  // again). Returns where its entry is.
  std::size_t top(PyObject* obj) {
    bool added = false;
    const std::size_t at = find_or_add(obj, added);
    if (!added) {
      // Given again: the same entry, which a reader must now remember.
      *data_.at(memory_.seen[at].offset) |= packed::kMetAgain;
      return memory_.seen[at].offset;
    }
    const std::size_t offset = data_.size();
    memory_.seen[at].offset = offset;
    if (!put_scalar(obj, PY_SSIZE_T_MAX)) put_new(obj);
    memory_.seen[at].done = true;
    return offset;
  }

 private:
  using Seen = detail::ToValueMemory::Seen;
  struct Step {
    PyObject* container;
    Py_ssize_t index;  // list/tuple position, or -1
    PyObject* key;     // dict key whose value is visited, or nullptr
    bool is_key;       // the dict key itself is visited
  };

  // An immutable object held in more than one place (str, bytes): a reference
  // to its entry if it was written already (true), else remembered as written
  // where the caller writes it next (false).
  bool put_met_again(PyObject* obj, Py_ssize_t one_place) {
    if (Py_REFCNT(obj) <= one_place) return false;
    bool added = false;
    const std::size_t at = find_or_add(obj, added);
    if (!added) {
      const std::size_t offset = memory_.seen[at].offset;
      *data_.at(offset) |= packed::kMetAgain;
      data_.put(packed::kRef);
      data_.put_varint(offset);
      return true;
    }
    memory_.seen[at].offset = data_.size();
    memory_.seen[at].done = true;
    return false;
  }

  // Writes an object that has no identity to keep; false for any other.
  // one_place: its references when one place holds it (see kOnePlace).
  bool put_scalar(PyObject* obj, Py_ssize_t one_place) {
    if (obj == Py_None) {
      data_.put(packed::kNone);
      return true;
    }
    PyTypeObject* type = Py_TYPE(obj);
    if (type == &PyUnicode_Type) {
      // A str held in many places (dict keys, words from one list) is written
      // once and named after, as pickle does: the reader makes one object and
      // hashes it once.
      if (!put_met_again(obj, one_place)) put_str(obj);
    } else if (type == &PyLong_Type) {
      put_int(obj);
    } else if (type == &PyFloat_Type) {
      const double d = PyFloat_AS_DOUBLE(obj);
      std::uint8_t* w = data_.grow(1 + sizeof d);
      w[0] = packed::kFloat;
      std::memcpy(w + 1, &d, sizeof d);
    } else if (type == &PyBool_Type) {
      data_.put(obj == Py_True ? packed::kTrue : packed::kFalse);
    } else if (type == &PyBytes_Type) {
      // So is a bytes object: a large one in many places is one copy, and
      // one object again on the other side.
      if (put_met_again(obj, one_place)) return true;
      const auto n = static_cast<std::size_t>(PyBytes_GET_SIZE(obj));
      put_raw(packed::kBytes, PyBytes_AS_STRING(obj), n, n);
    } else if (type == &PyComplex_Type) {
      const double d[2] = {PyComplex_RealAsDouble(obj), PyComplex_ImagAsDouble(obj)};
      data_.put(packed::kComplex);
      data_.put(d, sizeof d);
    } else {
      return false;
    }
    return true;
  }

  // An object put() is given while its caller holds a reference to it.
  void put(PyObject* obj) {
    if (put_scalar(obj, kOnePlace)) return;
    // Everything else has an identity that a second place must keep.
    if (Py_REFCNT(obj) <= kOnePlace) return put_new(obj);
    bool added = false;
    const std::size_t at = find_or_add(obj, added);
    if (!added) {
      const Seen& seen = memory_.seen[at];
      if (!seen.done) fail(obj, "it contains itself (a reference cycle); cycles cannot be shared");
      *data_.at(seen.offset) |= packed::kMetAgain;
      data_.put(packed::kRef);
      data_.put_varint(seen.offset);
      return;
    }
    memory_.seen[at].offset = data_.size();
    put_new(obj);
    memory_.seen[at].done = true;
  }

  // An item of a container (borrowed): held while it is written, unless it is
  // a scalar (which nothing written meanwhile can free).
  void put_item(PyObject* item) {
    if (put_scalar(item, 1)) return;
    Ref held(Py_NewRef(item));
    put(item);
  }

  // A tag, a length (in bytes, or a str's code units) and the bytes.
  void put_raw(std::uint8_t tag, const void* bytes, std::size_t n, std::size_t length) {
    std::uint8_t* w = data_.grow(11 + n);
    std::size_t used = 1;
    w[0] = tag;
    std::uint64_t v = length;
    while (v >= 0x80) {
      w[used++] = static_cast<std::uint8_t>(v | 0x80);
      v >>= 7;
    }
    w[used++] = static_cast<std::uint8_t>(v);
    if (n) std::memcpy(w + used, bytes, n);
    data_.truncate(data_.size() - (10 - (used - 1)));
  }

  void put_str(PyObject* obj) {
    // Code units as they are (PEP 393): the reader makes the str with one
    // copy, where UTF-8 would cost an encoding here and a decoding there.
    const auto n = static_cast<std::size_t>(PyUnicode_GET_LENGTH(obj));
    const int kind = PyUnicode_KIND(obj);
    const std::uint8_t width = PyUnicode_IS_ASCII(obj)        ? packed::kAscii
                               : kind == PyUnicode_1BYTE_KIND ? packed::kLatin1
                               : kind == PyUnicode_2BYTE_KIND ? packed::kUcs2
                                                              : packed::kUcs4;
    put_raw(static_cast<std::uint8_t>(packed::kStr | (width << packed::kStrShift)),
            PyUnicode_DATA(obj), n * static_cast<std::size_t>(kind), n);
  }

  void put_int(PyObject* obj) {
    long long v;
    if (PyUnstable_Long_IsCompact(reinterpret_cast<PyLongObject*>(obj))) {
      v = PyUnstable_Long_CompactValue(reinterpret_cast<PyLongObject*>(obj));
    } else {
      int overflow = 0;
      v = PyLong_AsLongLongAndOverflow(obj, &overflow);
      if (overflow) {
        Ref hex(PyNumber_ToBase(obj, 16));
        if (!hex) throw PythonErrorSet();
        std::string text;
        if (!utf8_of(hex.p, text)) throw PythonErrorSet();
        put_raw(packed::kBigInt, text.data(), text.size(), text.size());
        return;
      }
      if (v == -1 && PyErr_Occurred()) throw PythonErrorSet();
    }
    data_.put(packed::kInt);
    data_.put_varint(packed::zigzag(v));
  }

  // A container's count, written once its items are (code that runs meanwhile,
  // pickling when a failure is being found, may change a list).
  std::size_t count_placeholder(std::uint8_t tag) {
    data_.put(tag);
    const std::size_t at = data_.size();
    data_.grow(packed::kCountSize);
    return at;
  }
  void set_count(PyObject* container, std::size_t at, std::size_t n) {
    if (n > UINT32_MAX) fail(container, "it has more than 4294967295 items");
    const auto count = static_cast<std::uint32_t>(n);
    std::memcpy(data_.at(at), &count, sizeof count);
  }

  void put_new(PyObject* obj) {
    PyTypeObject* type = Py_TYPE(obj);
    if (type == &PyList_Type || type == &PyTuple_Type) return put_sequence(obj);
    if (type == &PyDict_Type) return put_dict(obj);
    if (type == &PyByteArray_Type) {
      const auto n = static_cast<std::size_t>(PyByteArray_GET_SIZE(obj));
      return put_raw(packed::kByteArray, PyByteArray_AS_STRING(obj), n, n);
    }
    if (type == &PySet_Type || type == &PyFrozenSet_Type) return put_set(obj);
    if (HandleCodec* codec = g_codec.load(std::memory_order_acquire); codec && codec->to_handle) {
      Handle h;
      int rc = codec->to_handle(obj, &h.object);
      if (rc < 0) throw PythonErrorSet();
      if (rc > 0) return put_side(std::move(h));
    }
    put_side(pickle(obj));
  }

  void put_side(Value v) {
    data_.side.push_back(std::move(v));
    data_.put(packed::kSide);
    data_.put_varint(data_.side.size() - 1);
  }

  std::size_t find_or_add(PyObject* obj, bool& added) {
    std::vector<Seen>& seen = memory_.seen;
    std::vector<std::uint32_t>& slots = memory_.slots;
    if ((seen.size() + 1) * 2 > slots.size()) {
      // At most half full: probes stay short.
      slots.assign(std::max<std::size_t>(16, slots.size() * 2), 0);
      const std::size_t mask = slots.size() - 1;
      for (std::size_t i = 0; i < seen.size(); ++i) {
        std::size_t h = pointer_hash(seen[i].object) & mask;
        while (slots[h]) h = (h + 1) & mask;
        slots[h] = static_cast<std::uint32_t>(i + 1);
      }
    }
    const std::size_t mask = slots.size() - 1;
    std::size_t h = pointer_hash(obj) & mask;
    while (std::uint32_t at = slots[h]) {
      if (seen[at - 1].object == obj) {
        added = false;
        return at - 1;
      }
      h = (h + 1) & mask;
    }
    seen.push_back(Seen{Py_NewRef(obj), 0, false});
    slots[h] = static_cast<std::uint32_t>(seen.size());
    added = true;
    return seen.size() - 1;
  }

  // Enters a container: refuses absurd depth. (A cycle is met as a remembered
  // object still being written: a container in a cycle is held in two places,
  // the cycle's and the one it was reached by, so it is always remembered.)
  void enter(PyObject* container) {
    if (static_cast<int>(path_.size()) >= options_.max_depth)
      fail(container, "the limit is " + std::to_string(options_.max_depth) + " levels of nesting",
           /*say_depth=*/true);
    path_.push_back(Step{container, -1, nullptr, false});
  }
  void leave() { path_.pop_back(); }

  void put_sequence(PyObject* obj) {
    enter(obj);
    const bool is_list = Py_TYPE(obj) == &PyList_Type;
    const std::size_t count_at = count_placeholder(is_list ? packed::kList : packed::kTuple);
    Py_ssize_t i = 0;
    if (is_list) {
      // Re-read the size each time: code that runs meanwhile may change a list.
      for (; i < PyList_GET_SIZE(obj); ++i) {
        path_.back().index = i;
        put_item(PyList_GET_ITEM(obj, i));
      }
    } else {
      for (const Py_ssize_t n = PyTuple_GET_SIZE(obj); i < n; ++i) {
        path_.back().index = i;
        put_item(PyTuple_GET_ITEM(obj, i));
      }
    }
    set_count(obj, count_at, static_cast<std::size_t>(i));
    leave();
  }

  void put_dict(PyObject* obj) {
    enter(obj);
    const std::size_t count_at = count_placeholder(packed::kDict);
    std::size_t n = 0;
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    // Code that runs meanwhile may change the dict: each pair is held while it
    // is written, and the walk over the dict stays within its table.
    while (PyDict_Next(obj, &pos, &key, &value)) {
      // (The key is held whatever it is: the place names it.)
      Ref held_key(Py_NewRef(key));
      Step& step = path_.back();
      step.key = key;
      step.is_key = true;
      put(key);
      path_.back().is_key = false;
      put_item(value);
      ++n;
    }
    set_count(obj, count_at, n);
    leave();
  }

  void put_set(PyObject* obj) {
    enter(obj);
    const std::size_t count_at =
        count_placeholder(Py_TYPE(obj) == &PySet_Type ? packed::kSet : packed::kFrozenSet);
    Ref it(PyObject_GetIter(obj));
    if (!it) throw PythonErrorSet();
    Py_ssize_t i = 0;
    while (PyObject* raw = PyIter_Next(it.p)) {
      Ref item(raw);
      path_.back().index = i++;
      put(item.p);
    }
    if (PyErr_Occurred()) throw PythonErrorSet();
    set_count(obj, count_at, static_cast<std::size_t>(i));
    leave();
  }

  // An object with no flat form: pickled with the others of the value once it
  // is written (ToValue::operator()), named by its index meanwhile. When a
  // failure is being found, pickled at once, alone (a batch of one): if it
  // does not pickle, NotShareable names its place.
  Pickled pickle(PyObject* obj) {
    if (!options_.allow_pickle) fail(obj, "it has no native form and pickling is not allowed here");
    if (!data_.pickles) data_.pickles = std::make_shared<PickleStream>();
    if (finding_failure_) {
      Ref batch(PyList_New(1));
      if (!batch) throw PythonErrorSet();
      PyList_SET_ITEM(batch.p, 0, Py_NewRef(obj));
      if (!dump_batch(memory_, *data_.pickles, batch.p, 1))
        fail(obj, pickling_failure(obj, memory_.face_pickler));
      return Pickled{
          {}, {}, data_.pickles, data_.pickles->objects - 1, std::string(type_name(obj))};
    }
    memory_.pending.push_back(obj);
    Py_INCREF(obj);  // (once it is held there)
    return Pickled{{},
                   {},
                   data_.pickles,
                   data_.pickles->objects + memory_.pending.size() - 1,
                   std::string(type_name(obj))};
  }

  // A deep path shows its first and last steps only: all of them would be
  // thousands of "[0]". Its first steps are kept whole enough for the Python
  // face, which names "argument 3", steps [i][j], of a map chunk as the map's
  // item i, argument j + 1.
  static constexpr std::size_t kFirstSteps = 4;
  static constexpr std::size_t kLastSteps = 2;
  // How much of a dict key's repr a step shows (less when the path is cut).
  static constexpr std::size_t kKeyChars = 40;
  static constexpr std::size_t kKeyCharsCut = 16;

  // The steps of the place: up to the dict key being visited, if any (past it
  // the key's own insides do not matter).
  std::size_t step_count() const {
    for (std::size_t i = 0; i < path_.size(); ++i)
      if (path_[i].key && path_[i].is_key) return i + 1;
    return path_.size();
  }

  bool path_is_cut() const { return step_count() > kFirstSteps + kLastSteps + 1; }

  // One step: [3] (a position), or as text: "['grid']", " (an element)", " (a key)".
  NotShareable::Step step(const Step& s, std::size_t key_chars) const {
    if (s.key) {
      if (s.is_key) return {-1, " (a key)"};
      Ref r(PyObject_Repr(s.key));
      std::string k = r ? to_utf8(r.p) : "?";
      if (!r) PyErr_Clear();
      if (k.size() > key_chars) {
        std::size_t cut = key_chars - 3;
        while (cut > 0 && (static_cast<unsigned char>(k[cut]) & 0xC0) == 0x80) --cut;  // UTF-8
        k.resize(cut);
        k += "...";
      }
      k.insert(k.begin(), '[');
      k += ']';
      return {-1, std::move(k)};
    }
    if (PySet_Check(s.container) || PyFrozenSet_Check(s.container)) return {-1, " (an element)"};
    return {static_cast<long long>(s.index), {}};
  }

  // The steps of the place: "[3]['grid']" (+ " (a key)"); of a deep one,
  // "[0][1][0][0]...[2][0]".
  std::vector<NotShareable::Step> steps() const {
    std::vector<NotShareable::Step> out;
    const std::size_t n = step_count();
    if (!path_is_cut()) {
      for (std::size_t i = 0; i < n; ++i) out.push_back(step(path_[i], kKeyChars));
      return out;
    }
    for (std::size_t i = 0; i < kFirstSteps; ++i) out.push_back(step(path_[i], kKeyCharsCut));
    out.push_back({-1, "..."});
    for (std::size_t i = n - kLastSteps; i < n; ++i) out.push_back(step(path_[i], kKeyCharsCut));
    return out;
  }

  // say_depth: name how deep `obj` is even when the whole path is shown.
  [[noreturn]] void fail(PyObject* obj, const std::string& why, bool say_depth = false) {
    std::string what = "a '" + std::string(type_name(obj)) + "' object";
    // `obj` is inside every container of the path; `where` itself is level 1.
    if (say_depth || path_is_cut())
      what += " nested " + std::to_string(path_.size() + 1) + " levels deep";
    throw NotShareable(std::string(where_), steps(), what, why);
  }

  std::string_view where_;
  const ToValueOptions& options_;
  detail::ToValueMemory& memory_;
  PackedData& data_;
  const bool finding_failure_;
  std::vector<Step> path_;
};

}  // namespace

namespace detail {

ToValueMemory::~ToValueMemory() {
  forget();
  drop_pending();
  drop_pickler();
  if (data) data->fit();  // the crossing's values are complete: no more writes
}

void ToValueMemory::drop_pickler() {
  Py_CLEAR(dump);
  Py_CLEAR(file);
}

void ToValueMemory::drop_pending() {
  for (PyObject* obj : pending) Py_DECREF(obj);
  pending.clear();
}

void ToValueMemory::forget() {
  for (const Seen& s : seen) Py_DECREF(s.object);
  seen.clear();
  slots.clear();
}

}  // namespace detail

Value ToValue::operator()(PyObject* obj, std::string_view where) {
  Value scalar;
  if (top_scalar(obj, scalar)) return scalar;
  if (!memory_.data) {
    memory_.data = std::make_shared<PackedData>();
    memory_.data->expect(t_packed_before);
  }
  PackedData& data = *memory_.data;
  const std::size_t size = data.size();
  const std::size_t side = data.side.size();
  try {
    std::size_t offset = Converter(where, options_, memory_).top(obj);
    if (!memory_.pending.empty() && !pickle_pending()) {
      // The batch names no object: the value again, each object pickled alone
      // as it is met, which names the one that does not pickle, at its place
      // (if all pickle this time, the value is that second one).
      pickling_failure(obj, memory_.face_pickler);  // (raises an interruption again)
      memory_.forget();
      data.truncate(size);
      data.side.resize(side);
      offset = Converter(where, options_, memory_, /*finding_failure=*/true).top(obj);
    }
    t_packed_before = std::min(data.size(), kMostExpected);
    return detail::PackedAccess::make(Packed{memory_.data, offset});
  } catch (...) {
    // What was being converted is not: start afresh (values returned before
    // keep their entries, and their pickles).
    PyObject* exc = PyErr_GetRaisedException();  // (freeing objects may run code)
    memory_.forget();
    memory_.drop_pending();
    PyErr_SetRaisedException(exc);
    data.truncate(size);
    data.side.resize(side);
    throw;
  }
}

// Pickles the objects of the value just written that have no flat form, as
// one list, into the crossing's stream. False with the error set if that fails.
bool ToValue::pickle_pending() {
  const std::size_t n = memory_.pending.size();
  Ref batch(PyList_New(static_cast<Py_ssize_t>(n)));
  if (!batch) throw PythonErrorSet();
  for (std::size_t i = 0; i < n; ++i)
    PyList_SET_ITEM(batch.p, static_cast<Py_ssize_t>(i), memory_.pending[i]);  // the list's now
  memory_.pending.clear();
  return dump_batch(memory_, *memory_.data->pickles, batch.p, n);
}

Value to_value(PyObject* obj, std::string_view where, const ToValueOptions& options) {
  return ToValue(options)(obj, where);
}

// ---------------------------------------------------------------------------
// Value -> Python
// ---------------------------------------------------------------------------

namespace {

// A Pickled that carries its own pickle.
PyObject* unpickle_alone(const Pickled& pickled) {
  Ref module(PyImport_ImportModule("pickle"));
  if (!module) return nullptr;
  const std::string& data = pickled.data;
  Ref bytes(PyBytes_FromStringAndSize(data.data(), static_cast<Py_ssize_t>(data.size())));
  if (!bytes) return nullptr;
  ScopedSet<const std::vector<Handle>> loading(t_loading, &pickled.handles);
  return PyObject_CallMethod(module.p, "loads", "O", bytes.p);
}

}  // namespace

ToPython::~ToPython() {
  for (auto& [data, obj] : made_) Py_DECREF(obj);
  for (auto& [stream, u] : unpickling_) {
    for (const Unpickling::Run& r : u.runs) Py_XDECREF(r.load);
    for (PyObject* batch : u.batches) Py_XDECREF(batch);
  }
}

PyObject* ToPython::unpickle(const Pickled& pickled) {
  if (!pickled.stream) return unpickle_alone(pickled);
  const PickleStream& stream = *pickled.stream;
  const std::size_t k = pickled.index;
  if (k >= stream.objects || stream.runs.empty() ||
      stream.batches.back().end > stream.bytes.size()) {
    PyErr_SetString(PyExc_SystemError, "interpool: a pickled object is not in its pickle stream");
    return nullptr;
  }
  Unpickling& u = unpickling_[&stream];
  if (!u.stream) {
    u.stream = pickled.stream;  // (held: its address names no other stream meanwhile)
    u.batches.assign(stream.batches.size(), nullptr);
    u.runs.resize(stream.runs.size());
  }
  const std::size_t b = stream.batch_of(k);
  if (!u.batches[b]) {
    // Each run has its unpickler, which reads its batches in order: what a
    // batch names of the ones before it is in that unpickler's memo.
    const std::size_t run = stream.run_of(b);
    Unpickling::Run& r = u.runs[run];
    if (!r.load) {
      const std::size_t begin = stream.begin_of(stream.runs[run]);
      const std::size_t end = stream.batches[stream.run_last(run)].end;
      Ref bytes(PyBytes_FromStringAndSize(stream.bytes.data() + begin,
                                          static_cast<Py_ssize_t>(end - begin)));
      Ref io(bytes ? PyImport_ImportModule("io") : nullptr);
      Ref file(io ? PyObject_CallMethod(io.p, "BytesIO", "O", bytes.p) : nullptr);
      Ref pickle(file ? PyImport_ImportModule("pickle") : nullptr);
      Ref unpickler(pickle ? PyObject_CallMethod(pickle.p, "Unpickler", "O", file.p) : nullptr);
      r.load = unpickler ? PyObject_GetAttrString(unpickler.p, "load") : nullptr;
      if (!r.load) return nullptr;
      r.next = stream.runs[run];
    }
    ScopedSet<const std::vector<Handle>> loading(t_loading, &stream.handles);
    while (r.next <= b) {
      PyObject* batch = PyObject_CallNoArgs(r.load);
      if (batch && (!PyList_CheckExact(batch) ||
                    static_cast<std::size_t>(PyList_GET_SIZE(batch)) != stream.size_of(r.next))) {
        Py_DECREF(batch);
        batch = nullptr;
        PyErr_SetString(PyExc_SystemError,
                        "interpool: a pickle stream holds what it was not given");
      }
      if (!batch) return nullptr;  // (the batches after it in its run cannot be read either)
      u.batches[r.next++] = batch;
    }
  }
  return Py_NewRef(
      PyList_GET_ITEM(u.batches[b], static_cast<Py_ssize_t>(k - stream.batches[b].first)));
}

PyObject* ToPython::operator()(const Value& value) { return convert(value); }

namespace {

// Widest code point of each str width: what PyUnicode_New needs to make a str
// of that width.
constexpr Py_UCS4 kMaxChar[] = {0x7f, 0xff, 0xffff, 0x10ffff};

// The cyclic GC paused while a value of builtins only is rebuilt: its
// containers are new and reachable, so the collections that their allocations
// would trigger on the way (about a sixth of the time of rebuilding nested records)
// find nothing; the count stays, and the next collection comes after. Only
// where no Python code can run meanwhile (no side values: no unpickling), so
// that no other thread of the interpreter sees the GC off or changes it.
class GcPause {
 public:
  explicit GcPause(bool pause) noexcept : was_on_(pause && PyGC_Disable()) {}
  ~GcPause() {
    if (was_on_) PyGC_Enable();
  }
  GcPause(const GcPause&) = delete;
  GcPause& operator=(const GcPause&) = delete;

 private:
  const bool was_on_;
};

}  // namespace

PyObject* ToPython::unpack(const Packed& p) {
  const PackedData& data = *p.data;
  try {
    if (p.offset >= data.size()) packed::Reader::damaged("an entry is outside it");
    packed::Reader r{data.bytes() + p.offset, data.bytes() + data.size()};
    GcPause pause(data.side.empty());
    return read(data, r, 0);
  } catch (const packed::Damaged& e) {
    PyErr_SetString(PyExc_SystemError, e.what());
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
  }
  return nullptr;
}

PyObject* ToPython::read(const PackedData& data, packed::Reader& r, int depth) {
  if (depth > packed::kMaxDepth) packed::Reader::damaged("it is nested too deeply");
  r.need(1);
  if (!(*r.p & packed::kMetAgain)) return plain(data, r, depth);
  // An entry other places name: one object for all of them.
  const std::uint8_t* at = r.p;
  if (auto it = made_.find(at); it != made_.end()) {
    r.skip(depth);  // made already, for a Ref read first
    return Py_NewRef(it->second);
  }
  PyObject* made = plain(data, r, depth);
  if (!made) return nullptr;
  try {
    made_.emplace(at, made);
  } catch (...) {
    Py_DECREF(made);
    throw;
  }
  return Py_NewRef(made);  // and the map's
}

PyObject* ToPython::plain(const PackedData& data, packed::Reader& r, int depth) {
  const std::uint8_t* at = r.p;
  const std::uint8_t tag = r.byte();
  switch (tag & packed::kKindMask) {
    case packed::kNone:
      return Py_NewRef(Py_None);
    case packed::kFalse:
      return Py_NewRef(Py_False);
    case packed::kTrue:
      return Py_NewRef(Py_True);
    case packed::kInt:
      return PyLong_FromLongLong(packed::unzigzag(r.varint()));
    case packed::kBigInt: {
      const std::uint64_t n = r.varint();
      const std::string hex(reinterpret_cast<const char*>(r.take(n)), static_cast<std::size_t>(n));
      return PyLong_FromString(hex.c_str(), nullptr, 0);
    }
    case packed::kFloat: {
      double d;
      std::memcpy(&d, r.take(sizeof d), sizeof d);
      return PyFloat_FromDouble(d);
    }
    case packed::kComplex: {
      double d[2];
      std::memcpy(d, r.take(sizeof d), sizeof d);
      return PyComplex_FromDoubles(d[0], d[1]);
    }
    case packed::kStr: {
      std::uint64_t n;
      std::uint8_t width;
      const std::uint8_t* units = r.str_units(tag, n, width);
      const std::size_t unit = packed::str_unit(width);
      if (width == packed::kUcs4)
        for (std::uint64_t i = 0; i < n; ++i) {
          Py_UCS4 c;
          std::memcpy(&c, units + 4 * i, 4);
          if (c > 0x10ffff) packed::Reader::damaged("a str in it holds no code point");
        }
      PyObject* s = PyUnicode_New(static_cast<Py_ssize_t>(n), kMaxChar[width]);
      if (s) std::memcpy(PyUnicode_DATA(s), units, static_cast<std::size_t>(n) * unit);
      return s;
    }
    case packed::kBytes: {
      const std::uint64_t n = r.varint();
      return PyBytes_FromStringAndSize(reinterpret_cast<const char*>(r.take(n)),
                                       static_cast<Py_ssize_t>(n));
    }
    case packed::kByteArray: {
      const std::uint64_t n = r.varint();
      return PyByteArray_FromStringAndSize(reinterpret_cast<const char*>(r.take(n)),
                                           static_cast<Py_ssize_t>(n));
    }
    case packed::kTuple: {
      const std::uint32_t n = r.count();
      r.need(n);  // an entry is a byte at least
      Ref t(PyTuple_New(n));
      if (!t) return nullptr;
      bool atomic = true;  // no item the cyclic GC looks at
      for (std::uint32_t i = 0; i < n; ++i) {
        PyObject* o = read(data, r, depth + 1);
        if (!o) return nullptr;
        atomic = atomic && !PyObject_IS_GC(o);
        PyTuple_SET_ITEM(t.p, i, o);
      }
      // A tuple of ints, floats and strs cannot be part of a cycle: the GC
      // would find that out and untrack it at its first collection (CPython
      // does so for every tuple); a result of a million such rows would cost
      // the caller collections over all of them meanwhile.
      if (atomic && n) PyObject_GC_UnTrack(t.p);
      return t.release();
    }
    case packed::kList: {
      const std::uint32_t n = r.count();
      r.need(n);
      Ref l(PyList_New(n));
      if (!l) return nullptr;
      for (std::uint32_t i = 0; i < n; ++i) {
        PyObject* o = read(data, r, depth + 1);
        if (!o) return nullptr;
        PyList_SET_ITEM(l.p, i, o);
      }
      return l.release();
    }
    case packed::kDict: {
      const std::uint32_t n = r.count();
      r.need(2 * static_cast<std::size_t>(n));
      Ref d(_PyDict_NewPresized(n));
      if (!d) return nullptr;
      for (std::uint32_t i = 0; i < n; ++i) {
        Ref key(read(data, r, depth + 1));
        if (!key) return nullptr;
        Ref val(read(data, r, depth + 1));
        if (!val || PyDict_SetItem(d.p, key.p, val.p) < 0) return nullptr;
      }
      return d.release();
    }
    case packed::kSet:
    case packed::kFrozenSet: {
      const std::uint32_t n = r.count();
      r.need(n);
      Ref s((tag & packed::kKindMask) == packed::kSet ? PySet_New(nullptr)
                                                      : PyFrozenSet_New(nullptr));
      if (!s) return nullptr;
      for (std::uint32_t i = 0; i < n; ++i) {
        Ref o(read(data, r, depth + 1));
        if (!o || PySet_Add(s.p, o.p) < 0) return nullptr;
      }
      return s.release();
    }
    case packed::kSide: {
      const std::uint64_t i = r.varint();
      if (i >= data.side.size()) packed::Reader::damaged("it names a side value it does not have");
      return convert(data.side[static_cast<std::size_t>(i)]);
    }
    case packed::kRef: {
      const std::uint64_t offset = r.varint();
      // Refs name an earlier entry, marked as met again.
      if (offset >= static_cast<std::uint64_t>(at - data.bytes()) ||
          !(data.bytes()[offset] & packed::kMetAgain))
        packed::Reader::damaged("a reference in it names no shared entry");
      packed::Reader target{data.bytes() + offset, data.bytes() + data.size()};
      return read(data, target, depth + 1);
    }
    default:
      packed::Reader::damaged("it holds an unknown kind of entry");
  }
}

PyObject* ToPython::container(const Value& value) {
  // A tree of Values (one a C++ host built) is rebuilt by recursion: as deep
  // as a buffer's entries may be, and no deeper (a deeper one overflowed the
  // worker's stack).
  if (tree_depth_ >= packed::kMaxDepth) {
    PyErr_Format(PyExc_ValueError,
                 "interpool: a value nested more than %d levels deep cannot be rebuilt (values "
                 "from Python are refused past 1000 levels)",
                 packed::kMaxDepth);
    return nullptr;
  }
  ++tree_depth_;
  PyObject* made = nullptr;
  switch (value.kind()) {
    case Kind::Tuple:
      made = items_to_tuple(value.get<Tuple>().items);
      break;
    case Kind::List:
      made = items_to_list(value.get<List>().items);
      break;
    case Kind::Dict:
      made = items_to_dict(value.get<Dict>());
      break;
    case Kind::Set:
      made = items_to_set(value.get<Set>().items, false);
      break;
    default:
      made = items_to_set(value.get<FrozenSet>().items, true);
      break;
  }
  --tree_depth_;
  return made;
}

PyObject* ToPython::items_to_tuple(const std::vector<Value>& items) {
  Ref t(PyTuple_New(static_cast<Py_ssize_t>(items.size())));
  if (!t) return nullptr;
  for (std::size_t i = 0; i < items.size(); ++i) {
    PyObject* o = convert(items[i]);
    if (!o) return nullptr;
    PyTuple_SET_ITEM(t.p, static_cast<Py_ssize_t>(i), o);
  }
  return t.release();
}

PyObject* ToPython::items_to_list(const std::vector<Value>& items) {
  Ref l(PyList_New(static_cast<Py_ssize_t>(items.size())));
  if (!l) return nullptr;
  for (std::size_t i = 0; i < items.size(); ++i) {
    PyObject* o = convert(items[i]);
    if (!o) return nullptr;
    PyList_SET_ITEM(l.p, static_cast<Py_ssize_t>(i), o);
  }
  return l.release();
}

PyObject* ToPython::items_to_set(const std::vector<Value>& items, bool frozen) {
  Ref s(frozen ? PyFrozenSet_New(nullptr) : PySet_New(nullptr));
  if (!s) return nullptr;
  for (const Value& v : items) {
    Ref o(convert(v));
    if (!o || PySet_Add(s.p, o.p) < 0) return nullptr;
  }
  return s.release();
}

PyObject* ToPython::items_to_dict(const Dict& dict) {
  Ref d(PyDict_New());
  if (!d) return nullptr;
  for (const auto& [k, v] : dict.items) {
    Ref key(convert(k));
    if (!key) return nullptr;
    Ref val(convert(v));
    if (!val || PyDict_SetItem(d.p, key.p, val.p) < 0) return nullptr;
  }
  return d.release();
}

PyObject* ToPython::shared(const Value& value) {
  // Every place of one shared value shows the same data.
  const void* key = &value.data();
  if (auto it = made_.find(key); it != made_.end()) return Py_NewRef(it->second);
  PyObject* made = convert(value, /*fresh=*/true);
  if (!made) return nullptr;
  try {
    made_.emplace(key, made);
  } catch (...) {
    Py_DECREF(made);
    return PyErr_NoMemory();
  }
  return Py_NewRef(made);  // and the map's
}

PyObject* ToPython::convert(const Value& value, bool fresh) {
  if (const Packed* p = detail::PackedAccess::packed(value)) return unpack(*p);
  if (value.is_shared() && !fresh) return shared(value);
  switch (value.kind()) {
    case Kind::None:
      return Py_NewRef(Py_None);
    case Kind::Bool:
      return PyBool_FromLong(value.get<bool>());
    case Kind::Int:
      return PyLong_FromLongLong(value.get<std::int64_t>());
    case Kind::BigInt:
      return PyLong_FromString(value.get<BigInt>().hex.c_str(), nullptr, 0);
    case Kind::Float:
      return PyFloat_FromDouble(value.get<double>());
    case Kind::Complex: {
      auto c = value.get<std::complex<double>>();
      return PyComplex_FromDoubles(c.real(), c.imag());
    }
    case Kind::Str: {
      const std::string& s = value.get<Str>().utf8;
      return PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "surrogatepass");
    }
    case Kind::Bytes: {
      const std::string& s = value.get<Bytes>().data;
      return PyBytes_FromStringAndSize(s.data(), static_cast<Py_ssize_t>(s.size()));
    }
    case Kind::ByteArray: {
      const std::string& s = value.get<ByteArray>().data;
      return PyByteArray_FromStringAndSize(s.data(), static_cast<Py_ssize_t>(s.size()));
    }
    case Kind::Tuple:
    case Kind::List:
    case Kind::Dict:
    case Kind::Set:
    case Kind::FrozenSet:
      return container(value);
    case Kind::Handle: {
      if (!value.get<Handle>().object) {
        PyErr_SetString(PyExc_ValueError,
                        "interpool: an empty engine object handle (a null shared_ptr or "
                        "Handle{}) cannot be rebuilt: pass a queue, buffer or lock that exists");
        return nullptr;
      }
      HandleCodec* codec = g_codec.load(std::memory_order_acquire);
      if (!codec || !codec->to_object) {
        PyErr_SetString(PyExc_RuntimeError,
                        "an engine object (queue, buffer, ...) arrived, but interpool's Python "
                        "extension is not loaded in this process: import interpool first");
        return nullptr;
      }
      return codec->to_object(value.get<Handle>().object);
    }
    case Kind::Pickled:
      return unpickle(value.get<Pickled>());
    default:
      break;
  }
  PyErr_SetString(PyExc_SystemError, "interpool: unknown value kind");
  return nullptr;
}

PyObject* to_python(const Value& value) { return ToPython()(value); }

std::int64_t capture_handle(std::shared_ptr<Shareable> object) {
  if (!t_capturing) return -1;
  t_capturing->push_back(Handle{std::move(object)});
  return static_cast<std::int64_t>(t_capturing->size() - 1);
}

std::shared_ptr<Shareable> captured_handle(std::size_t index) noexcept {
  if (!t_loading || index >= t_loading->size()) return nullptr;
  return (*t_loading)[index].object;
}

void set_handle_codec(const HandleCodec& codec) noexcept {
  // Set once per process by the extension; the copy is never freed because
  // other threads may be reading it.
  static HandleCodec stored;
  static std::atomic_flag set = ATOMIC_FLAG_INIT;
  if (set.test_and_set()) return;
  stored = codec;
  g_codec.store(&stored, std::memory_order_release);
}

std::string to_utf8(PyObject* obj) {
  Ref s(PyObject_Str(obj));
  std::string out;
  if (!s || !utf8_of(s.p, out)) {
    PyErr_Clear();
    return "<unprintable " + std::string(type_name(obj)) + " object>";
  }
  return out;
}

namespace {

// The extension module that refused this interpreter, if `exc` or an exception
// in its chain is CPython's refusal (Python/import.c): "module NAME does not
// support loading in subinterpreters". Packages re-raise it with words of their
// own (numpy speaks of a bad install), so the chain is searched. The refusal
// carries no other data: its text is the one the engine reads.
std::string refused_extension(PyObject* exc) {
  constexpr std::string_view prefix = "module ";
  constexpr std::string_view suffix = " does not support loading in subinterpreters";
  for (int depth = 0; exc && depth < 64; ++depth) {
    if (PyErr_GivenExceptionMatches(exc, PyExc_ImportError)) {
      std::string text = to_utf8(exc);
      if (text.size() > prefix.size() + suffix.size() && text.starts_with(prefix) &&
          text.ends_with(suffix)) {
        std::string name = text.substr(prefix.size(), text.size() - prefix.size() - suffix.size());
        if (name.size() >= 2 && name.front() == '\'' && name.back() == '\'')
          name = name.substr(1, name.size() - 2);
        return name;
      }
    }
    // Borrowed along the chain: each link is held by the exception before it.
    Ref next(PyException_GetCause(exc));
    if (!next) next.p = PyException_GetContext(exc);
    exc = next.p;
  }
  return {};
}

}  // namespace

void raise_with_note(PyObject* exc, const std::string& note) {
  if (!exc) return;
  PyObject* r =
      PyObject_CallMethod(exc, "add_note", "s#", note.data(), static_cast<Py_ssize_t>(note.size()));
  if (r)
    Py_DECREF(r);
  else
    PyErr_Clear();  // the note only helps; the error itself goes on
  PyErr_SetRaisedException(exc);
}

ErrorInfo capture_error() {
  ErrorInfo info;
  Ref exc(PyErr_GetRaisedException());
  if (!exc) {
    info.type_module = "builtins";
    info.type_qualname = "SystemError";
    info.message = "interpool: an error was reported but no exception was set";
    return info;
  }
  PyObject* type = reinterpret_cast<PyObject*>(Py_TYPE(exc.p));
  if (Ref qualname{PyType_GetQualName(Py_TYPE(exc.p))}) {
    info.type_qualname = to_utf8(qualname.p);
  } else {
    PyErr_Clear();
    info.type_qualname = std::string(type_name(exc.p));
  }
  if (Ref module{PyObject_GetAttrString(type, "__module__")}) {
    info.type_module = to_utf8(module.p);
  } else {
    PyErr_Clear();
  }
  info.message = to_utf8(exc.p);
  info.refused_module = refused_extension(exc.p);
  if (Ref tb_module{PyImport_ImportModule("traceback")}) {
    Ref lines(PyObject_CallMethod(tb_module.p, "format_exception", "O", exc.p));
    Ref empty(PyUnicode_FromString(""));
    Ref text(lines && empty ? PyUnicode_Join(empty.p, lines.p) : nullptr);
    if (text) info.traceback = to_utf8(text.p);
  }
  PyErr_Clear();
  if (Ref pickle{PyImport_ImportModule("pickle")}) {
    Ref data(PyObject_CallMethod(pickle.p, "dumps", "Oi", exc.p, 5));
    if (data && PyBytes_Check(data.p))
      info.pickled.assign(PyBytes_AS_STRING(data.p),
                          static_cast<std::size_t>(PyBytes_GET_SIZE(data.p)));
  }
  PyErr_Clear();
  return info;
}

}  // namespace interpool
