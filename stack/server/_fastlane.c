/*
 * The fast lane: plain GET, SET, INCR, DECR and MSET of a pipelined chunk, run without the
 * interpreter; and the write batch of a commit.
 *
 * ``run`` reads RESP commands from a bytes buffer and executes them for as long as each one is
 * the common case, which it decides before touching anything:
 *
 *   GET key       whose record is a string without a TTL, or missing;
 *   SET key value (no options) over a key that is missing, or a string without a TTL, when
 *                 writes are allowed;
 *   INCR/DECR key likewise, over a missing key or a canonical integer without overflow;
 *   MSET k v ...  when every one of its keys could be SET so (checked before any is written);
 *   LRANGE key start stop  inside a window of the list that the Python path kept
 *                 (storage/rangecache.py; see run_lrange below);
 *   and HSET, SADD, LPUSH, RPUSH, LPOP, RPOP, ZADD on an existing collection (below).
 *
 * Records come from the record cache or the pending batch, or else from ``load`` (Engine.load:
 * LevelDB, the record then cached), as Engine.get reads them. The lane stops at ``deadline``,
 * so one client's pipeline runs in bounded turns (client.py).
 *
 * At the first command that is anything else (another command, options, a TTL, another type, an unusual or incomplete header, a value over max_value (a chunked string), a value
 * INCR would have to judge, an overflow, a client blocked on the key) it stops
 * and returns the position of that command: the Python path (client.py, dispatch.py) runs it,
 * with all of its checks and errors, and the lane resumes after it. So the lane holds no
 * semantics of its own beyond this common case, and the Python handlers stay the reference
 * (the differential tests run with and without the lane).
 *
 * Storage layout (docs/storage-format.md): the metadata key is the database prefix, the key's
 * slot (2 bytes, big-endian) and the key; a string record is the type byte 0x01 and the value.
 * Records go into the pending batch and the record cache exactly as Engine.put does; the caller
 * does the bookkeeping (key counts, statistics) from the counts this returns.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define TYPE_STRING 0x01
#define TTL_FLAG 0x80
#define MAX_KEY 4096 /* longer keys take the Python path */

#include "../core/resp_scan.h"

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Out;

static int out_reserve(Out *o, Py_ssize_t more) {
    if (o->len + more <= o->cap)
        return 0;
    Py_ssize_t cap = o->cap ? o->cap : 1024;
    while (cap < o->len + more)
        cap *= 2;
    char *d = PyMem_Realloc(o->data, (size_t)cap);
    if (d == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    o->data = d;
    o->cap = cap;
    return 0;
}

static int out_add(Out *o, const char *s, Py_ssize_t n) {
    if (out_reserve(o, n) < 0)
        return -1;
    memcpy(o->data + o->len, s, (size_t)n);
    o->len += n;
    return 0;
}

/* The decimal digits of n >= 0 at w (at most 20); how many. (sprintf's parsing of its format
 * was a good part of a short bulk's cost.) */
static int put_digits(char *w, Py_ssize_t n) {
    char tmp[24];
    int k = 0;
    do {
        tmp[k++] = (char)('0' + n % 10);
        n /= 10;
    } while (n > 0);
    for (int i = 0; i < k; i++)
        w[i] = tmp[k - 1 - i];
    return k;
}

static int out_bulk(Out *o, const char *s, Py_ssize_t n) {
    if (out_reserve(o, n + 32) < 0)
        return -1;
    char *w = o->data + o->len;
    *w++ = '$';
    w += put_digits(w, n);
    *w++ = '\r';
    *w++ = '\n';
    o->len = w - o->data;
    memcpy(o->data + o->len, s, (size_t)n);
    o->len += n;
    o->data[o->len++] = '\r';
    o->data[o->len++] = '\n';
    return 0;
}

/* A one-line reply: mark, then n bytes at s, then CRLF. */
static int out_line(Out *o, char mark, const char *s, Py_ssize_t n) {
    if (out_reserve(o, n + 3) < 0)
        return -1;
    o->data[o->len++] = mark;
    memcpy(o->data + o->len, s, (size_t)n);
    o->len += n;
    o->data[o->len++] = '\r';
    o->data[o->len++] = '\n';
    return 0;
}

/* An integer reply ":<digits>\r\n". */
static int out_int(Out *o, const char *digits, Py_ssize_t n) { return out_line(o, ':', digits, n); }

/* The record cache as Engine.get reads it: the young generation, the old one, the pending
 * batch, then LevelDB through load (Engine.load, which caches what it read without starting a
 * new generation, so young stays the dict it is here). Py_None as load: LevelDB is not read.
 * (A record found in the old generation moves back to the young one, as Engine.get does.)
 */
typedef struct {
    PyObject *young, *old, *pending, *load;
    PyObject *floors, *ceilings; /* Engine.floors/ceilings (dicts), or NULL */
} Cache;

/* The record of mkey as Engine.get sees it: a new reference to its bytes, Py_None for a miss,
 * or NULL (no exception set) when only LevelDB can tell and load is Py_None (or the entry is
 * not bytes, which only the Python path would know what to do with). NULL with an exception
 * set on error. */
static PyObject *cached_record(Cache *c, PyObject *mkey) {
    PyObject *rec = PyDict_GetItemWithError(c->young, mkey);
    if (rec == NULL && !PyErr_Occurred()) {
        rec = PyDict_GetItemWithError(c->old, mkey);
        if (rec != NULL && PyDict_SetItem(c->young, mkey, rec) < 0)
            return NULL;
        if (rec == NULL && !PyErr_Occurred())
            rec = PyDict_GetItemWithError(c->pending, mkey);
    }
    if (rec == NULL && !PyErr_Occurred() && c->load != Py_None) {
        PyObject *loaded = PyObject_CallOneArg(c->load, mkey);
        if (loaded != NULL && loaded != Py_None && !PyBytes_Check(loaded)) {
            Py_DECREF(loaded);
            return NULL;
        }
        return loaded;
    }
    if (rec == NULL || (rec != Py_None && !PyBytes_Check(rec)))
        return NULL;
    Py_INCREF(rec);
    return rec;
}

/* The metadata key: prefix + slot (2 bytes, big-endian) + key. */
static PyObject *meta_key(const char *prefix, Py_ssize_t plen, const char *key, Py_ssize_t klen) {
    PyObject *mkey = PyBytes_FromStringAndSize(NULL, plen + 2 + klen);
    if (mkey == NULL)
        return NULL;
    char *m = PyBytes_AS_STRING(mkey);
    unsigned int slot = key_slot(key, klen);
    memcpy(m, prefix, (size_t)plen);
    m[plen] = (char)(slot >> 8);
    m[plen + 1] = (char)(slot & 0xff);
    memcpy(m + plen + 2, key, (size_t)klen);
    return mkey;
}

/* The slot of a metadata key (the two bytes after the database prefix). */
static unsigned int slot_of(PyObject *mkey, Py_ssize_t plen) {
    const unsigned char *m = (const unsigned char *)PyBytes_AS_STRING(mkey) + plen;
    return ((unsigned int)m[0] << 8 | m[1]) & 0x3fff;
}

/* Whether the gate (gate.py) lets the lane use mkey: its slot's byte in slots (16384 bytes,
 * or NULL: every slot) is non-zero. A key whose slot needs a look is left to the Python path,
 * which asks the gate about each key. */
static int served(const unsigned char *slots, PyObject *mkey, Py_ssize_t plen) {
    return slots == NULL || slots[slot_of(mkey, plen)] != 0;
}

/* A slot byte of 2 (gate.ONE_SLOT): served, and a command's keys must all be in one slot (a
 * node with a slot map answers -CROSSSLOT otherwise: the Python path's). */
#define ONE_SLOT 2

/* ---- access times (OBJECT IDLETIME) ------------------------------------------------------- */

/* A fixed-size table of the last access time per metadata key, in place of a dict: a read or a
 * write of a key is one probe into 2 cache lines rather than a dict insert that touches the
 * index, the entry and the key object. Keys are known by their 64-bit hash (a collision of two
 * live keys is beyond reason); a key lives in one of WINDOW slots after its home slot, and when
 * all are taken the least recently used of them makes room, so the table keeps the keys used
 * most recently, up to about its size. */

#define WINDOW 8

typedef struct {
    uint64_t tag; /* the key's hash with the low bit set; 0 = empty */
    double when;
} Slot;

typedef struct {
    PyObject_HEAD Slot *slots;
    size_t mask;
    Py_ssize_t used;
    void *map;       /* the mapping slots lie in (NULL: slots came from PyMem_Calloc) */
    size_t map_size;
} AccessTimes;

#define HUGE_PAGE ((size_t)2 << 20)

/* Zeroed memory for the table: a mapping aligned to 2 MB huge pages that the kernel is asked
 * to back with them (MADV_HUGEPAGE; each touch of the table is a random access, and with 4 KB
 * pages nearly every one also missed the TLB), or PyMem_Calloc where that fails. */
static int table_alloc(AccessTimes *a, size_t bytes) {
    a->map = NULL;
    if (bytes >= HUGE_PAGE) {
        size_t size = bytes + HUGE_PAGE;
        char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m != MAP_FAILED) {
            char *aligned = (char *)(((uintptr_t)m + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
#ifdef MADV_HUGEPAGE
            madvise(aligned, bytes, MADV_HUGEPAGE); /* a hint: without it, 4 KB pages */
#endif
            a->map = m;
            a->map_size = size;
            a->slots = (Slot *)aligned;
            return 0;
        }
    }
    a->slots = PyMem_Calloc(bytes / sizeof(Slot), sizeof(Slot));
    return a->slots == NULL ? -1 : 0;
}

static PyTypeObject AccessTimesType;

static int key_tag(PyObject *key, uint64_t *tag) {
    if (!PyBytes_Check(key)) {
        PyErr_SetString(PyExc_TypeError, "AccessTimes keys are bytes");
        return -1;
    }
    Py_hash_t h = PyObject_Hash(key);
    if (h == -1 && PyErr_Occurred())
        return -1;
    *tag = (uint64_t)h | 1;
    return 0;
}

static Slot *find(AccessTimes *a, uint64_t tag) {
    for (size_t i = 0; i < WINDOW; i++) {
        Slot *s = &a->slots[(tag + i) & a->mask];
        if (s->tag == tag)
            return s;
    }
    return NULL;
}

/* The slot of key, or NULL: with *err set when key is not bytes (exception raised). */
static Slot *lookup(AccessTimes *a, PyObject *key, int *err) {
    uint64_t tag;
    *err = key_tag(key, &tag) < 0;
    return *err ? NULL : find(a, tag);
}

static void forget(AccessTimes *a, Slot *s) {
    s->tag = 0;
    a->used--;
}

/* Record an access: in the key's slot if it has one, else in the first empty slot of its
 * window, else over the least recently used one there. */
static void touch(AccessTimes *a, uint64_t tag, double when) {
    Slot *victim = NULL;
    for (size_t i = 0; i < WINDOW; i++) {
        Slot *s = &a->slots[(tag + i) & a->mask];
        if (s->tag == tag) {
            s->when = when;
            return;
        }
        if (victim == NULL || (victim->tag != 0 && (s->tag == 0 || s->when < victim->when)))
            victim = s;
    }
    if (victim->tag == 0)
        a->used++;
    victim->tag = tag;
    victim->when = when;
}

static PyObject *AccessTimes_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    Py_ssize_t size = 1 << 20;
    static char *names[] = {"size", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|n", names, &size))
        return NULL;
    if (size < WINDOW || (size & (size - 1)) || (size_t)size > SIZE_MAX / 2 / sizeof(Slot)) {
        PyErr_SetString(PyExc_ValueError, "size must be a power of two >= 8 (and one that fits)");
        return NULL;
    }
    AccessTimes *a = (AccessTimes *)type->tp_alloc(type, 0);
    if (a == NULL)
        return NULL;
    if (table_alloc(a, (size_t)size * sizeof(Slot)) < 0) {
        Py_DECREF(a);
        return PyErr_NoMemory();
    }
    a->mask = (size_t)size - 1;
    return (PyObject *)a;
}

static void AccessTimes_dealloc(AccessTimes *a) {
    if (a->map != NULL)
        munmap(a->map, a->map_size);
    else
        PyMem_Free(a->slots);
    Py_TYPE(a)->tp_free((PyObject *)a);
}

static Py_ssize_t AccessTimes_len(AccessTimes *a) { return a->used; }

static PyObject *AccessTimes_getitem(AccessTimes *a, PyObject *key) {
    int err;
    Slot *s = lookup(a, key, &err);
    if (s == NULL) {
        if (!err)
            PyErr_SetObject(PyExc_KeyError, key);
        return NULL;
    }
    return PyFloat_FromDouble(s->when);
}

static int AccessTimes_setitem(AccessTimes *a, PyObject *key, PyObject *value) {
    if (value == NULL) { /* del a[key] */
        int err;
        Slot *s = lookup(a, key, &err);
        if (s == NULL) {
            if (!err)
                PyErr_SetObject(PyExc_KeyError, key);
            return -1;
        }
        forget(a, s);
        return 0;
    }
    uint64_t tag;
    if (key_tag(key, &tag) < 0)
        return -1;
    double when = PyFloat_AsDouble(value);
    if (when == -1.0 && PyErr_Occurred())
        return -1;
    touch(a, tag, when);
    return 0;
}

/* get(key, default=None), and pop() when remove is set. */
static PyObject *get_or_pop(AccessTimes *a, PyObject *const *args, Py_ssize_t nargs,
                            int remove) {
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, remove ? "pop(key, default=None)"
                                                : "get(key, default=None)");
        return NULL;
    }
    int err;
    Slot *s = lookup(a, args[0], &err);
    if (err)
        return NULL;
    if (s == NULL) {
        PyObject *dflt = nargs == 2 ? args[1] : Py_None;
        Py_INCREF(dflt);
        return dflt;
    }
    PyObject *when = PyFloat_FromDouble(s->when);
    if (when != NULL && remove)
        forget(a, s);
    return when;
}

static PyObject *AccessTimes_get(AccessTimes *a, PyObject *const *args, Py_ssize_t nargs) {
    return get_or_pop(a, args, nargs, 0);
}

static PyObject *AccessTimes_pop(AccessTimes *a, PyObject *const *args, Py_ssize_t nargs) {
    return get_or_pop(a, args, nargs, 1);
}

static PyMappingMethods AccessTimes_mapping = {
    (lenfunc)AccessTimes_len,
    (binaryfunc)AccessTimes_getitem,
    (objobjargproc)AccessTimes_setitem,
};

static PyMethodDef AccessTimes_methods[] = {
    {"get", (PyCFunction)(void (*)(void))AccessTimes_get, METH_FASTCALL,
     "get(key, default=None) -> the last access time of key"},
    {"pop", (PyCFunction)(void (*)(void))AccessTimes_pop, METH_FASTCALL,
     "pop(key, default=None) -> the last access time of key, forgetting it"},
    {NULL, NULL, 0, NULL}};

static PyTypeObject AccessTimesType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "stack.server._fastlane.AccessTimes",
    .tp_basicsize = sizeof(AccessTimes),
    .tp_dealloc = (destructor)AccessTimes_dealloc,
    .tp_as_mapping = &AccessTimes_mapping,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "AccessTimes(size=2**20): last access time per key, for OBJECT IDLETIME; "
              "keeps the most recently used keys, up to about size",
    .tp_methods = AccessTimes_methods,
    .tp_new = AccessTimes_new,
};

/* ---- the lane ------------------------------------------------------------------------------ */

/* A case-insensitive match of a command name with an upper-case word of the same length. */
static int is_word(const char *s, Py_ssize_t n, const char *upper) {
    if ((Py_ssize_t)strlen(upper) != n)
        return 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if ((s[i] & ~0x20) != upper[i])
            return 0;
    return 1;
}

/* A string value as INCR reads it, in its canonical form only ("0", or an optional '-' and
 * digits without a leading zero, in range); anything else is left to the Python path. */
static int canonical_int(const char *s, Py_ssize_t n, long long *out) {
    if (n == 1 && s[0] == '0') {
        *out = 0;
        return 1;
    }
    int neg = n > 0 && s[0] == '-';
    Py_ssize_t i = neg;
    if (n - i < 1 || n - i > 19 || s[i] < '1' || s[i] > '9')
        return 0;
    unsigned long long v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (unsigned long long)(s[i] - '0');
    }
    if (v > (unsigned long long)LLONG_MAX)
        return 0; /* (LLONG_MIN itself is rare enough for the Python path) */
    *out = neg ? -(long long)v : (long long)v;
    return 1;
}

/* A record the lane can use as it is: a known miss (Py_None) or a string without a TTL.
 * (A TTL or another type: the Python path decides.) */
static int plain(PyObject *rec) {
    return rec == Py_None ||
           (PyBytes_GET_SIZE(rec) >= 1 && (unsigned char)PyBytes_AS_STRING(rec)[0] == TYPE_STRING);
}

/* Whether the lane may write over mkey, whose record is rec: 1 when it is plain and no client
 * blocks on the key (the Python path wakes them), 0 when not, -1 on error. */
static int writable(PyObject *rec, PyObject *waited, PyObject *mkey) {
    if (!plain(rec))
        return 0;
    if (PyDict_GET_SIZE(waited) == 0) /* the usual case: nobody blocks on any key */
        return 1;
    int wait = PyDict_Contains(waited, mkey);
    return wait < 0 ? -1 : !wait;
}

/* Whether mkey's record is one not written to LevelDB yet (pending, or in the batch in
 * flight): 1, 0, or -1 on error. A reply that read it waits for the batch (server.py). */
static int not_written(Cache *cache, PyObject *inflight, PyObject *mkey) {
    int in = PyDict_GET_SIZE(cache->pending) ? PyDict_Contains(cache->pending, mkey) : 0;
    if (in == 0 && inflight != NULL && PyDict_GET_SIZE(inflight))
        in = PyDict_Contains(inflight, mkey);
    return in;
}

enum {
    OP_NONE,
    OP_GET,
    OP_SET,
    OP_INCR,
    OP_DECR,
    OP_MSET,
    OP_HSET,
    OP_SADD,
    OP_LPUSH,
    OP_RPUSH,
    OP_LPOP,
    OP_RPOP,
    OP_ZADD,
    OP_LRANGE,
    OP_ZPOPMIN,
    OP_ZPOPMAX,
    OP_SPOP,
    N_OPS
};
#define DEADLINE_EVERY 16 /* commands between looks at the clock */

/* time.monotonic(): the clock of the deadline. */
static double monotonic(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
#define MAX_MSET 64 /* pairs; longer MSETs take the Python path */

/* Note an access of mkey (OBJECT IDLETIME). */
static int accessed(AccessTimes *access, PyObject *mkey, double clock) {
    uint64_t tag;
    if (key_tag(mkey, &tag) < 0)
        return -1;
    touch(access, tag, clock);
    return 0;
}

/* Store a string record (type byte + value) as Engine.put does, and note the write as an
 * access (OBJECT IDLETIME). */
static int store(Cache *cache, AccessTimes *access, double clock, PyObject *mkey,
                 const char *value, Py_ssize_t vlen) {
    PyObject *record = PyBytes_FromStringAndSize(NULL, vlen + 1);
    if (record == NULL)
        return -1;
    char *r = PyBytes_AS_STRING(record);
    r[0] = TYPE_STRING;
    memcpy(r + 1, value, (size_t)vlen);
    int rc = PyDict_SetItem(cache->pending, mkey, record);
    if (rc == 0)
        rc = PyDict_SetItem(cache->young, mkey, record);
    if (rc == 0)
        rc = accessed(access, mkey, clock);
    Py_DECREF(record);
    return rc;
}

static int bytes_cmp(PyObject *a, PyObject *b);

/* MSET of n pairs at *p: 1 when it ran (and *p moved past it), 0 when the Python path must
 * (nothing changed), -1 on error. Every key is checked before any is written, so the command
 * runs here whole or not at all. */
static int run_mset(const char **p, const char *end, Py_ssize_t n, const char *pfx,
                    Py_ssize_t plen, Cache *cache, AccessTimes *access, double clock,
                    PyObject *waited, Py_ssize_t max_value, const unsigned char *slots,
                    Py_ssize_t *new_keys) {
    PyObject *mkeys[MAX_MSET];
    const char *values[MAX_MSET];
    Py_ssize_t vlens[MAX_MSET];
    int fresh[MAX_MSET]; /* the key held nothing when looked up */
    const char *s = *p;
    Py_ssize_t got = 0;
    int result = 1, again = 0; /* again: a key given twice (looked up again before storing) */
    while (got < n && result == 1) {
        const char *key;
        Py_ssize_t klen = read_bulk(&s, end, &key, MAX_KEY);
        if (klen < 0 || (vlens[got] = read_bulk(&s, end, &values[got], max_value)) < 0) {
            result = 0;
            break;
        }
        PyObject *mkey = meta_key(pfx, plen, key, klen);
        if (mkey == NULL) {
            result = -1;
            break;
        }
        mkeys[got++] = mkey;
        if (!served(slots, mkey, plen)) {
            result = 0;
            break;
        }
        if (got > 1 && slots != NULL && slots[slot_of(mkeys[0], plen)] == ONE_SLOT &&
            slot_of(mkey, plen) != slot_of(mkeys[0], plen)) {
            result = 0; /* keys of several slots on a node with a slot map */
            break;
        }
        PyObject *rec = cached_record(cache, mkey);
        if (rec == NULL) {
            result = PyErr_Occurred() ? -1 : 0;
            break;
        }
        fresh[got - 1] = rec == Py_None;
        result = writable(rec, waited, mkey);
        Py_DECREF(rec);
        for (Py_ssize_t i = 0; i < got - 1 && !again; i++)
            again = bytes_cmp(mkeys[i], mkey) == 0;
    }
    for (Py_ssize_t i = 0; i < got; i++) {
        if (result == 1 && again) { /* an earlier pair may have written the same key */
            PyObject *rec = cached_record(cache, mkeys[i]);
            if (rec == NULL)
                result = -1;
            else
                fresh[i] = rec == Py_None;
            Py_XDECREF(rec);
        }
        if (result == 1) {
            if (store(cache, access, clock, mkeys[i], values[i], vlens[i]) < 0)
                result = -1;
            else
                *new_keys += fresh[i];
        }
        Py_DECREF(mkeys[i]);
    }
    if (result == 1)
        *p = s;
    return result;
}

/* ---- collections: HSET, SADD, LPUSH, RPUSH, LPOP, RPOP, ZADD ------------------------------
 *
 * The common case only: an existing collection of the command's type, without a TTL, that no
 * client blocks on, changed by members or elements of at most max_value bytes. Its metadata
 * record is the type byte, the version (u64) and the size (u64), and for a list the head and
 * tail positions (u64 each); members live under the sub-key
 * 0x02 phys slot keylen(u32) key version(u64) member, a list's elements under their position
 * (u64), as docs/storage-format.md says and storage/collections.py does. A new or emptied
 * collection (a version to hand out, a key to count or delete) is the Python path's. */

static void put_u32(char *p, Py_ssize_t v) {
    p[0] = (char)((v >> 24) & 0xff);
    p[1] = (char)((v >> 16) & 0xff);
    p[2] = (char)((v >> 8) & 0xff);
    p[3] = (char)(v & 0xff);
}

#define MAX_MEMBERS 64 /* members or elements of one command; more take the Python path */
#define NS_SUB 0x02

typedef struct {
    PyObject *mkey, *rec;
    const char *key;
    Py_ssize_t klen;
    int type;
    unsigned long long version, size, head, tail;
} Coll;

static unsigned long long get_u64(const char *p) {
    unsigned long long v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | (unsigned char)p[i];
    return v;
}

static void put_u64(char *p, unsigned long long v) {
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (char)(v & 0xff);
}

/* Open key as a collection of type for the lane: 1 when it is the common case (c filled, its
 * references owned), 0 when the Python path must run the command, -1 on error. */
static int open_coll(Cache *cache, PyObject *waited, const unsigned char *slots, const char *pfx,
                     Py_ssize_t plen, const char *key, Py_ssize_t klen, int type, Coll *c) {
    c->mkey = meta_key(pfx, plen, key, klen);
    c->rec = NULL;
    if (c->mkey == NULL)
        return -1;
    if (!served(slots, c->mkey, plen))
        return 0;
    c->rec = cached_record(cache, c->mkey);
    if (c->rec == NULL)
        return PyErr_Occurred() ? -1 : 0;
    if (c->rec == Py_None)
        return 0;
    const char *r = PyBytes_AS_STRING(c->rec);
    Py_ssize_t n = PyBytes_GET_SIZE(c->rec);
    if (n != (type == 3 ? 33 : 17) || (unsigned char)r[0] != type) /* another type, or a TTL */
        return 0;
    int wait = PyDict_Contains(waited, c->mkey);
    if (wait != 0)
        return wait < 0 ? -1 : 0;
    c->key = key;
    c->klen = klen;
    c->type = type;
    c->version = get_u64(r + 1);
    c->size = get_u64(r + 9);
    if (type == 3) {
        c->head = get_u64(r + 17);
        c->tail = get_u64(r + 25);
    }
    return 1;
}

static void close_coll(Coll *c) {
    Py_XDECREF(c->mkey);
    Py_XDECREF(c->rec);
}

/* The sub-key of a member (mlen bytes at member), or of a list position (member NULL). */
static PyObject *sub_key(Coll *c, Py_ssize_t plen, const char *member, Py_ssize_t mlen,
                         unsigned long long position) {
    Py_ssize_t n = 1 + (plen - 1) + 2 + 4 + c->klen + 8 + (member ? mlen : 8);
    PyObject *k = PyBytes_FromStringAndSize(NULL, n);
    if (k == NULL)
        return NULL;
    char *w = PyBytes_AS_STRING(k);
    *w++ = NS_SUB;
    memcpy(w, PyBytes_AS_STRING(c->mkey) + 1, (size_t)(plen + 1)); /* phys and slot */
    w += plen + 1;
    put_u32(w, c->klen);
    memcpy(w + 4, c->key, (size_t)c->klen);
    w += 4 + c->klen;
    put_u64(w, c->version);
    w += 8;
    if (member)
        memcpy(w, member, (size_t)mlen);
    else
        put_u64(w, position);
    return k;
}

/* Engine.put (value) or Engine.delete (Py_None) of one record. */
static int put_record(Cache *cache, PyObject *k, PyObject *v) {
    if (PyDict_SetItem(cache->pending, k, v) < 0)
        return -1;
    return PyDict_SetItem(cache->young, k, v);
}

/* Write the collection's metadata record after its members changed (Keyspace.write of a
 * record with the same version and no TTL: the record and the access time). */
static int save_coll(Cache *cache, AccessTimes *access, double clock, Coll *c) {
    char r[33];
    Py_ssize_t n = c->type == 3 ? 33 : 17;
    r[0] = (char)c->type;
    put_u64(r + 1, c->version);
    put_u64(r + 9, c->size);
    if (c->type == 3) {
        put_u64(r + 17, c->head);
        put_u64(r + 25, c->tail);
    }
    PyObject *record = PyBytes_FromStringAndSize(r, n);
    if (record == NULL)
        return -1;
    int rc = put_record(cache, c->mkey, record);
    Py_DECREF(record);
    return rc < 0 ? -1 : accessed(access, c->mkey, clock);
}

/* After members were added: the collection's new size saved (when it changed); returns
 * added, or -1 on error. */
static Py_ssize_t grown(Cache *cache, AccessTimes *access, double clock, Coll *c,
                        Py_ssize_t added) {
    if (added) {
        c->size += (unsigned long long)added;
        if (save_coll(cache, access, clock, c) < 0)
            return -1;
    }
    return added;
}

/* HSET key f v ... (pairs) or SADD key m ... (pairs 0): the members are read first, so that
 * nothing is written unless the whole command runs here. Returns the number of new members,
 * -2 when the Python path must run it, -1 on error. */
static Py_ssize_t run_add(Cache *cache, AccessTimes *access, double clock, Coll *c,
                          Py_ssize_t plen, const char **items, Py_ssize_t *lens, Py_ssize_t n,
                          int pairs, PyObject *empty) {
    int step = pairs ? 2 : 1;
    for (Py_ssize_t i = 0; i < n; i += step) { /* all known (cached, or read from LevelDB)? */
        PyObject *k = sub_key(c, plen, items[i], lens[i], 0);
        if (k == NULL)
            return -1;
        PyObject *rec = cached_record(cache, k);
        Py_DECREF(k);
        if (rec == NULL)
            return PyErr_Occurred() ? -1 : -2;
        Py_DECREF(rec);
    }
    Py_ssize_t added = 0;
    for (Py_ssize_t i = 0; i < n; i += step) {
        PyObject *k = sub_key(c, plen, items[i], lens[i], 0);
        if (k == NULL)
            return -1;
        PyObject *rec = cached_record(cache, k); /* again: an earlier member may be the same */
        PyObject *v = pairs ? PyBytes_FromStringAndSize(items[i + 1], lens[i + 1]) : empty;
        if (!pairs)
            Py_INCREF(v);
        /* A hash's field is written whatever it held; a set's member only when new. */
        int rc = rec == NULL || v == NULL                ? -1
                 : pairs || rec == Py_None ? put_record(cache, k, v)
                                           : 0;
        added += rec == Py_None;
        Py_XDECREF(rec);
        Py_XDECREF(v);
        Py_DECREF(k);
        if (rc < 0)
            return -1;
    }
    return grown(cache, access, clock, c, added);
}

/* LPUSH/RPUSH key e ...: the new length, or -1 on error. */
static Py_ssize_t run_push(Cache *cache, AccessTimes *access, double clock, Coll *c,
                           Py_ssize_t plen, const char **items, Py_ssize_t *lens, Py_ssize_t n,
                           int left) {
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned long long pos = left ? --c->head : c->tail++;
        PyObject *k = sub_key(c, plen, NULL, 0, pos);
        PyObject *v = k == NULL ? NULL : PyBytes_FromStringAndSize(items[i], lens[i]);
        int rc = v == NULL ? -1 : put_record(cache, k, v);
        Py_XDECREF(k);
        Py_XDECREF(v);
        if (rc < 0)
            return -1;
    }
    c->size += (unsigned long long)n;
    return save_coll(cache, access, clock, c) < 0 ? -1 : (Py_ssize_t)c->size;
}

/* LPOP/RPOP key of a list that keeps at least one element: a new reference to the element
 * (b"" when its record is missing, as ListView.pop), NULL with no exception when the Python
 * path must run it, NULL with one on error. */
static PyObject *run_pop(Cache *cache, AccessTimes *access, double clock, Coll *c,
                         Py_ssize_t plen, int left, PyObject *empty) {
    if (c->size < 2)
        return NULL; /* the key goes away: the Python path deletes it */
    unsigned long long pos = left ? c->head : c->tail - 1;
    PyObject *k = sub_key(c, plen, NULL, 0, pos);
    if (k == NULL)
        return NULL;
    PyObject *rec = cached_record(cache, k);
    if (rec == NULL) {
        Py_DECREF(k);
        return NULL;
    }
    if (put_record(cache, k, Py_None) < 0) {
        Py_DECREF(k);
        Py_DECREF(rec);
        return NULL;
    }
    Py_DECREF(k);
    if (left)
        c->head++;
    else
        c->tail--;
    c->size--;
    if (save_coll(cache, access, clock, c) < 0) {
        Py_DECREF(rec);
        return NULL;
    }
    if (rec == Py_None) {
        Py_DECREF(rec);
        Py_INCREF(empty);
        return empty;
    }
    return rec;
}

/* A score as ZADD's reader would take it, in its plain decimal form only ("-12.5": an
 * optional '-', at most 15 digits, an optional '.' and at most 15 more): strtod of those
 * gives the double Python's float() and Redis's strtod give. 0 when it is anything else
 * (exponents, inf, a '+', spaces, a flag such as NX: the Python path decides). */
static int plain_score(const char *s, Py_ssize_t n, double *out) {
    char buf[40];
    Py_ssize_t i = 0, digits = 0, frac = -1;
    if (n < 1 || n > 33)
        return 0;
    if (s[0] == '-')
        i = 1;
    for (; i < n; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            if (frac < 0 ? ++digits > 15 : ++frac > 15)
                return 0;
        } else if (s[i] == '.' && frac < 0 && digits > 0) {
            frac = 0;
        } else {
            return 0;
        }
    }
    if (digits == 0 || frac == 0)
        return 0;
    memcpy(buf, s, (size_t)n);
    buf[n] = 0;
    *out = strtod(buf, NULL);
    return 1;
}

/* Scores on disk (storage/scores.py): byte order is numeric order; -0.0 is stored as 0.0. */
static void encode_score(double x, char *out) {
    unsigned long long n;
    x += 0.0;
    memcpy(&n, &x, 8);
    put_u64(out, n ^ (n >> 63 ? ~0ULL : 1ULL << 63));
}

static double decode_score(const char *p) {
    unsigned long long n = get_u64(p);
    double x;
    n ^= n >> 63 ? 1ULL << 63 : ~0ULL;
    memcpy(&x, &n, 8);
    return x;
}

/* The sub-key of a sorted set's member ('m' member) or of its score index entry ('s' score
 * member). */
static PyObject *zset_key(Coll *c, Py_ssize_t plen, char space, const char *score,
                          const char *member, Py_ssize_t mlen) {
    char stack[256];
    Py_ssize_t n = 1 + (score ? 8 : 0) + mlen;
    char *m = n <= (Py_ssize_t)sizeof stack ? stack : PyMem_Malloc((size_t)n);
    if (m == NULL)
        return PyErr_NoMemory();
    m[0] = space;
    if (score)
        memcpy(m + 1, score, 8);
    memcpy(m + 1 + (score ? 8 : 0), member, (size_t)mlen);
    PyObject *k = sub_key(c, plen, m, n, 0);
    if (m != stack)
        PyMem_Free(m);
    return k;
}

static int bytes_cmp(PyObject *a, PyObject *b) {
    Py_ssize_t na = PyBytes_GET_SIZE(a), nb = PyBytes_GET_SIZE(b);
    int c = memcmp(PyBytes_AS_STRING(a), PyBytes_AS_STRING(b), (size_t)(na < nb ? na : nb));
    return c ? c : (na > nb) - (na < nb);
}

/* A score index entry sk was written (its first base_len bytes are the index's start): keep
 * the index's known ends true, as ZSet.set does (zset.py: nothing live below floors[base] nor
 * above ceilings[base]). */
static int widen(Cache *cache, PyObject *sk, Py_ssize_t base_len) {
    PyObject *ends[2] = {cache->floors, cache->ceilings};
    PyObject *base = NULL;
    int rc = 0;
    for (int i = 0; i < 2 && rc == 0; i++) {
        if (ends[i] == NULL || PyDict_GET_SIZE(ends[i]) == 0)
            continue;
        if (base == NULL &&
            (base = PyBytes_FromStringAndSize(PyBytes_AS_STRING(sk), base_len)) == NULL)
            return -1;
        PyObject *end = PyDict_GetItemWithError(ends[i], base);
        if (end == NULL)
            rc = PyErr_Occurred() ? -1 : 0;
        else if (!PyBytes_Check(end))
            rc = PyDict_DelItem(ends[i], base);
        else if (i == 0 ? bytes_cmp(sk, end) < 0 : bytes_cmp(sk, end) > 0)
            rc = PyDict_SetItem(ends[i], base, sk);
    }
    Py_XDECREF(base);
    return rc;
}

/* ZADD key score member ... without options, scores in plain decimal form: as
 * sortedsets.zadd does, member by member (so a member given twice ends with its last score).
 * Returns the number of new members, -2 when the Python path must run it, -1 on error. */
static Py_ssize_t run_zadd(Cache *cache, AccessTimes *access, double clock, Coll *c,
                           Py_ssize_t plen, const char **items, Py_ssize_t *lens, Py_ssize_t n,
                           PyObject *empty) {
    double scores[MAX_MEMBERS];
    for (Py_ssize_t i = 0; i < n; i += 2) {
        if (!plain_score(items[i], lens[i], &scores[i / 2]))
            return -2;
        PyObject *k = zset_key(c, plen, 'm', NULL, items[i + 1], lens[i + 1]);
        if (k == NULL)
            return -1;
        PyObject *rec = cached_record(cache, k); /* known (cached, or read from LevelDB)? */
        Py_DECREF(k);
        if (rec == NULL)
            return PyErr_Occurred() ? -1 : -2;
        int bad = rec != Py_None && PyBytes_GET_SIZE(rec) != 8;
        Py_DECREF(rec);
        if (bad)
            return -2;
    }
    Py_ssize_t added = 0;
    for (Py_ssize_t i = 0; i < n; i += 2) {
        const char *member = items[i + 1];
        Py_ssize_t mlen = lens[i + 1];
        char enc[8];
        encode_score(scores[i / 2], enc);
        PyObject *mk = zset_key(c, plen, 'm', NULL, member, mlen);
        if (mk == NULL)
            return -1;
        PyObject *rec = cached_record(cache, mk); /* again: an earlier pair may be the same */
        int rc = rec == NULL ? -1 : 0;
        if (rc == 0 && rec != Py_None) {
            if (decode_score(PyBytes_AS_STRING(rec)) == scores[i / 2]) { /* unchanged */
                Py_DECREF(rec);
                Py_DECREF(mk);
                continue;
            }
            PyObject *old = zset_key(c, plen, 's', PyBytes_AS_STRING(rec), member, mlen);
            rc = old == NULL ? -1 : put_record(cache, old, Py_None);
            Py_XDECREF(old);
        } else if (rc == 0) {
            added++;
        }
        if (rc == 0) {
            PyObject *v = PyBytes_FromStringAndSize(enc, 8);
            rc = v == NULL ? -1 : put_record(cache, mk, v);
            Py_XDECREF(v);
        }
        if (rc == 0) {
            PyObject *sk = zset_key(c, plen, 's', enc, member, mlen);
            rc = sk == NULL ? -1 : put_record(cache, sk, empty);
            if (rc == 0)
                rc = widen(cache, sk, PyBytes_GET_SIZE(sk) - 8 - mlen);
            Py_XDECREF(sk);
        }
        Py_XDECREF(rec);
        Py_DECREF(mk);
        if (rc < 0)
            return -1;
    }
    return grown(cache, access, clock, c, added);
}

#define ENDS_MAX 10000 /* zset.py's ENDS_MAX: remembered ends, then all forgotten at once */

/* A score as Redis 7.0's addReplyDouble prints it (resp.py's format_score17): "%.17g", or
 * "inf" / "-inf"; a bulk string in RESP2, a double (',') in RESP3. */
static int out_score(Out *o, double x, int resp3) {
    char text[40];
    int n = isinf(x) ? snprintf(text, sizeof text, "%s", x > 0 ? "inf" : "-inf")
                     : snprintf(text, sizeof text, "%.17g", x + 0.0);
    return resp3 ? out_line(o, ',', text, n) : out_bulk(o, text, n);
}

/* ZPOPMIN key / ZPOPMAX key (no count) of a sorted set that keeps at least one member: the
 * member with the lowest (highest) score, found by first(lo, hi, reverse) (Engine.first: one
 * seek through LevelDB and the writes not yet in it) from the known end of the live scores
 * (Engine.floors / ceilings), as ZSet.end does; both of its records deleted, the size saved
 * and the end remembered at the member popped, as ZSet.pop does. Reply: [member, score].
 * 1 when it ran, 0 when the Python path must (the key goes away, or first found nothing),
 * -1 on error. */
static int run_zpop(Cache *cache, AccessTimes *access, double clock, Coll *c, Py_ssize_t plen,
                    int highest, int resp3, PyObject *first, Out *out) {
    if (c->size < 2)
        return 0; /* the key goes away: the Python path deletes it */
    PyObject *ends = highest ? cache->ceilings : cache->floors;
    PyObject *base = sub_key(c, plen, "s", 1, 0);
    if (base == NULL)
        return -1;
    Py_ssize_t blen = PyBytes_GET_SIZE(base);
    PyObject *lo = NULL, *hi = NULL, *found = NULL, *mk = NULL;
    int result = -1;
    PyObject *known = ends == NULL ? NULL : PyDict_GetItemWithError(ends, base);
    if (known == NULL && PyErr_Occurred())
        goto done;
    if (known != NULL && (!PyBytes_Check(known) || PyBytes_GET_SIZE(known) < blen))
        known = NULL;
    /* [lo, hi): the score index ('s' and one past it), narrowed to the known end */
    if (highest && known != NULL) {
        lo = Py_NewRef(base);
        hi = PyBytes_FromStringAndSize(NULL, PyBytes_GET_SIZE(known) + 1);
        if (hi == NULL)
            goto done;
        memcpy(PyBytes_AS_STRING(hi), PyBytes_AS_STRING(known), (size_t)PyBytes_GET_SIZE(known));
        PyBytes_AS_STRING(hi)[PyBytes_GET_SIZE(known)] = 0;
    } else {
        lo = Py_NewRef(known != NULL ? known : base);
        hi = PyBytes_FromStringAndSize(PyBytes_AS_STRING(base), blen);
        if (hi == NULL)
            goto done;
        PyBytes_AS_STRING(hi)[blen - 1]++; /* 's' + 1: the end of the index */
    }
    found = PyObject_CallFunctionObjArgs(first, lo, hi, highest ? Py_True : Py_False, NULL);
    if (found == NULL)
        goto done;
    if (!PyTuple_Check(found) || PyTuple_GET_SIZE(found) != 2 ||
        !PyBytes_Check(PyTuple_GET_ITEM(found, 0)) ||
        PyBytes_GET_SIZE(PyTuple_GET_ITEM(found, 0)) < blen + 8) {
        result = 0; /* nothing found (None): the Python path says what it makes of that */
        goto done;
    }
    PyObject *sk = PyTuple_GET_ITEM(found, 0);
    const char *k = PyBytes_AS_STRING(sk), *member = k + blen + 8;
    Py_ssize_t mlen = PyBytes_GET_SIZE(sk) - blen - 8;
    double score = decode_score(k + blen);
    mk = zset_key(c, plen, 'm', NULL, member, mlen);
    if (mk == NULL || put_record(cache, mk, Py_None) < 0 || put_record(cache, sk, Py_None) < 0)
        goto done;
    c->size--;
    if (save_coll(cache, access, clock, c) < 0)
        goto done;
    if (ends != NULL) { /* zset.py's _remember: the end moves to the member popped */
        int has = PyDict_Contains(ends, base);
        if (has < 0)
            goto done;
        if (!has && PyDict_GET_SIZE(ends) >= ENDS_MAX)
            PyDict_Clear(ends);
        if (PyDict_SetItem(ends, base, sk) < 0)
            goto done;
    }
    if (out_add(out, "*2\r\n", 4) < 0 || out_bulk(out, member, mlen) < 0 ||
        out_score(out, score, resp3) < 0)
        goto done;
    result = 1;
done:
    Py_DECREF(base);
    Py_XDECREF(lo);
    Py_XDECREF(hi);
    Py_XDECREF(found);
    Py_XDECREF(mk);
    return result;
}

/* SPOP key (no count) of a set that keeps a member: pick(base, size) (picks.spop_pick:
 * random_member over the set's members, the deletion noted for compaction) names the member;
 * its record is deleted and the size saved, as sets.spop does. Reply: the member. 1 when it
 * ran, 0 when the Python path must (the key goes away, or the pick is not bytes), -1 on
 * error. */
static int run_spop(Cache *cache, AccessTimes *access, double clock, Coll *c, Py_ssize_t plen,
                    PyObject *pick, Out *out) {
    if (c->size < 2)
        return 0; /* the key goes away: the Python path deletes it */
    PyObject *base = sub_key(c, plen, "", 0, 0), *size = NULL, *member = NULL, *k = NULL;
    int result = -1;
    if (base == NULL || (size = PyLong_FromUnsignedLongLong(c->size)) == NULL ||
        (member = PyObject_CallFunctionObjArgs(pick, base, size, NULL)) == NULL)
        goto done;
    if (!PyBytes_Check(member)) {
        result = 0;
        goto done;
    }
    k = sub_key(c, plen, PyBytes_AS_STRING(member), PyBytes_GET_SIZE(member), 0);
    if (k == NULL || put_record(cache, k, Py_None) < 0)
        goto done;
    c->size--;
    if (save_coll(cache, access, clock, c) < 0 ||
        out_bulk(out, PyBytes_AS_STRING(member), PyBytes_GET_SIZE(member)) < 0)
        goto done;
    result = 1;
done:
    Py_XDECREF(base);
    Py_XDECREF(size);
    Py_XDECREF(member);
    Py_XDECREF(k);
    return result;
}

/* One collection command at *p (name already read, argc arguments): 1 when it ran (reply in
 * out, *p moved past it), 0 when the Python path must run it, -1 on error. */
static int run_collection(int op, const char **p, const char *end, Py_ssize_t argc,
                          const char *pfx, Py_ssize_t plen, Cache *cache, AccessTimes *access,
                          double clock, PyObject *waited, const unsigned char *slots,
                          Py_ssize_t max_value, int resp3, PyObject *first, PyObject *pick,
                          Out *out) {
    const char *items[2 * MAX_MEMBERS];
    Py_ssize_t lens[2 * MAX_MEMBERS];
    const char *s = *p, *key;
    Py_ssize_t n = argc - 2;
    int pairs = op == OP_HSET || op == OP_ZADD;
    int pop = op == OP_LPOP || op == OP_RPOP || op == OP_ZPOPMIN || op == OP_ZPOPMAX ||
              op == OP_SPOP;
    if (((op == OP_ZPOPMIN || op == OP_ZPOPMAX) && first == NULL) || (op == OP_SPOP && pick == NULL))
        return 0;
    if (n > 2 * MAX_MEMBERS || (pop ? n != 0 : n < 1) ||
        (pairs && n % 2) || (op == OP_SADD || op == OP_LPUSH || op == OP_RPUSH ? n > MAX_MEMBERS
                                                                               : 0))
        return 0;
    Py_ssize_t klen = read_bulk(&s, end, &key, MAX_KEY);
    if (klen < 0)
        return 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if ((lens[i] = read_bulk(&s, end, &items[i], max_value)) < 0)
            return 0;
    int type = op == OP_HSET                                     ? 2
               : op == OP_SADD || op == OP_SPOP                  ? 4
               : op == OP_ZADD || op == OP_ZPOPMIN || op == OP_ZPOPMAX ? 5
                                                                 : 3;
    Coll c;
    int r = open_coll(cache, waited, slots, pfx, plen, key, klen, type, &c);
    if (r == 0 && c.rec == Py_None && (op == OP_ZPOPMIN || op == OP_ZPOPMAX || op == OP_SPOP)) {
        /* a known miss: nothing to pop (an empty array, SPOP's nil) */
        r = (op == OP_SPOP ? resp3 ? out_add(out, "_\r\n", 3) : out_add(out, "$-1\r\n", 5)
                           : out_add(out, "*0\r\n", 4)) < 0
                ? -1
                : 1;
        if (r == 1)
            *p = s;
        close_coll(&c);
        return r;
    }
    if (r <= 0) {
        close_coll(&c);
        return r;
    }
    PyObject *empty = PyBytes_FromStringAndSize("", 0);
    if (empty == NULL) {
        close_coll(&c);
        return -1;
    }
    int result = 1;
    char digits[24];
    if (op == OP_SPOP) {
        result = run_spop(cache, access, clock, &c, plen, pick, out);
    } else if (op == OP_ZPOPMIN || op == OP_ZPOPMAX) {
        result = run_zpop(cache, access, clock, &c, plen, op == OP_ZPOPMAX, resp3, first, out);
    } else if (op == OP_LPOP || op == OP_RPOP) {
        PyObject *v = run_pop(cache, access, clock, &c, plen, op == OP_LPOP, empty);
        if (v == NULL)
            result = PyErr_Occurred() ? -1 : 0;
        else if (out_bulk(out, PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v)) < 0)
            result = -1;
        Py_XDECREF(v);
    } else {
        Py_ssize_t v = op == OP_LPUSH || op == OP_RPUSH
                           ? run_push(cache, access, clock, &c, plen, items, lens, n,
                                      op == OP_LPUSH)
                       : op == OP_ZADD
                           ? run_zadd(cache, access, clock, &c, plen, items, lens, n, empty)
                           : run_add(cache, access, clock, &c, plen, items, lens, n, pairs,
                                     empty);
        if (v == -2)
            result = 0;
        else if (v < 0 || out_int(out, digits, snprintf(digits, sizeof digits, "%zd", v)) < 0)
            result = -1;
    }
    Py_DECREF(empty);
    if (result == 1 && accessed(access, c.mkey, clock) < 0) /* OBJECT IDLETIME */
        result = -1;
    close_coll(&c);
    if (result == 1)
        *p = s;
    return result;
}

/* ---- LRANGE from the windows of rangecache.py ----------------------------------------------
 *
 * The Python path keeps the encoding of the elements an LRANGE read (rangecache.py: a dict
 * mkey -> (record, first, count, body), the record being the list's metadata record object
 * when it was read); the lane answers an LRANGE inside such a window while the list's current
 * record is that very object, and leaves every other LRANGE (no window, a TTL, another type,
 * a missing key, unusual indexes) to the Python path, which fills the window. */

/* Where n RESP bulk strings start after the first skip ones of body[0:len] (*from) and how
 * many bytes they take, or -1 when body does not hold them. */
static Py_ssize_t bulk_span(const char *body, Py_ssize_t len, Py_ssize_t skip, Py_ssize_t n,
                            Py_ssize_t *from) {
    const char *p = body, *end = body + len;
    *from = 0;
    if (skip > len || n > len) /* each bulk takes at least 4 bytes: body cannot hold them */
        return -1;
    for (Py_ssize_t i = 0; i < skip + n; i++) {
        if (i == skip)
            *from = p - body;
        if (p >= end || *p != '$')
            return -1;
        const char *s = p + 1;
        Py_ssize_t m = read_len(&s, end);
        if (m < 0 || end - s < m + 2)
            return -1;
        p = s + m + 2;
    }
    if (n == 0)
        return 0;
    return (p - body) - *from;
}

/* LRANGE key start stop at *p (name already read): 1 when it ran (reply in out, *p moved past
 * it), 0 when the Python path must run it, -1 on error. */
static int run_lrange(const char **p, const char *end, const char *pfx, Py_ssize_t plen,
                      Cache *cache, PyObject *inflight, PyObject *ranges, AccessTimes *access,
                      double clock, const unsigned char *slots, Out *out, Py_ssize_t *hits,
                      Py_ssize_t *dirty) {
    const char *s = *p, *key, *a, *b;
    long long start, stop;
    Py_ssize_t klen = read_bulk(&s, end, &key, MAX_KEY);
    if (klen < 0)
        return 0;
    Py_ssize_t alen = read_bulk(&s, end, &a, 20);
    Py_ssize_t blen = alen < 0 ? -1 : read_bulk(&s, end, &b, 20);
    if (blen < 0 || !canonical_int(a, alen, &start) || !canonical_int(b, blen, &stop))
        return 0;
    PyObject *mkey = meta_key(pfx, plen, key, klen), *rec = NULL;
    if (mkey == NULL)
        return -1;
    int result = 0;
    if (!served(slots, mkey, plen))
        goto done;
    rec = cached_record(cache, mkey);
    if (rec == NULL) {
        result = PyErr_Occurred() ? -1 : 0;
        goto done;
    }
    if (rec == Py_None || PyBytes_GET_SIZE(rec) != 33 || PyBytes_AS_STRING(rec)[0] != 3)
        goto done; /* missing, another type, or a TTL */
    long long size = (long long)get_u64(PyBytes_AS_STRING(rec) + 9);
    if (size <= 0)
        goto done;
    if (start < 0 && (start += size) < 0) /* ListView.bounds */
        start = 0;
    if (stop < 0)
        stop += size;
    if (stop > size - 1)
        stop = size - 1;
    if (start > stop || start >= size) {
        result = out_add(out, "*0\r\n", 4) < 0 ? -1 : 1;
    } else {
        PyObject *entry = ranges != NULL ? PyDict_GetItemWithError(ranges, mkey) : NULL;
        if (entry == NULL) {
            result = PyErr_Occurred() ? -1 : 0;
            goto done;
        }
        if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 4 ||
            PyTuple_GET_ITEM(entry, 0) != rec || !PyBytes_Check(PyTuple_GET_ITEM(entry, 3)))
            goto done; /* the list changed since */
        long long first = PyLong_AsLongLong(PyTuple_GET_ITEM(entry, 1));
        long long count = PyLong_AsLongLong(PyTuple_GET_ITEM(entry, 2));
        if ((first == -1 || count == -1) && PyErr_Occurred()) {
            result = -1;
            goto done;
        }
        if (start < first || stop >= first + count)
            goto done;
        PyObject *body = PyTuple_GET_ITEM(entry, 3);
        Py_ssize_t from, len = bulk_span(PyBytes_AS_STRING(body), PyBytes_GET_SIZE(body),
                                         (Py_ssize_t)(start - first),
                                         (Py_ssize_t)(stop - start + 1), &from);
        if (len < 0)
            goto done;
        char head[32];
        int hn = snprintf(head, sizeof head, "*%lld\r\n", stop - start + 1);
        result = out_add(out, head, hn) < 0 ||
                         out_add(out, PyBytes_AS_STRING(body) + from, len) < 0
                     ? -1
                     : 1;
    }
    if (result == 1) {
        int unwritten = not_written(cache, inflight, mkey);
        if (unwritten < 0 || accessed(access, mkey, clock) < 0)
            result = -1;
        else {
            *dirty += unwritten;
            (*hits)++;
        }
    }
done:
    Py_XDECREF(rec);
    Py_DECREF(mkey);
    if (result == 1)
        *p = s;
    return result;
}

PyDoc_STRVAR(bulk_slice_doc,
             "bulk_slice(body, skip, n)\n--\n\n"
             "The n RESP bulk strings after the first skip ones of body (bytes of bulk strings), "
             "as bytes; None when body does not hold that many.");

static PyObject *bulk_slice(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "bulk_slice(body: bytes, skip, n)");
        return NULL;
    }
    Py_ssize_t skip = PyLong_AsSsize_t(args[1]), n = PyLong_AsSsize_t(args[2]);
    if ((skip == -1 || n == -1) && PyErr_Occurred())
        return NULL;
    if (skip < 0 || n < 0) {
        PyErr_SetString(PyExc_ValueError, "bulk_slice: skip and n must be >= 0");
        return NULL;
    }
    Py_ssize_t from, len = bulk_span(PyBytes_AS_STRING(args[0]), PyBytes_GET_SIZE(args[0]), skip,
                                     n, &from);
    if (len < 0)
        Py_RETURN_NONE;
    if (from == 0 && len == PyBytes_GET_SIZE(args[0])) {
        Py_INCREF(args[0]);
        return args[0];
    }
    return PyBytes_FromStringAndSize(PyBytes_AS_STRING(args[0]) + from, len);
}

PyDoc_STRVAR(run_doc,
             "run(buf, pos, prefix, cache, cache_old, pending, access, clock, waited, writes_ok, "
             "resp3, max_value, load=None, deadline=0.0, slots=None, inflight=None, floors=None, "
             "ceilings=None, ranges=None)\n--\n\n"
             "Run the plain GET, SET, INCR, DECR and MSET at buf[pos:]; stop at the first command "
             "that is anything else or not the common case, or once time.monotonic() passes "
             "deadline (checked every DEADLINE_EVERY commands; 0: no deadline). load(mkey) reads "
             "a record the cache does not hold (None: stop there instead). slots (16384 bytes, the "
             "gate's map): stop at a key whose slot's byte is 0.\n"
             "inflight: the batch being written (a dict), read as pending is. floors, ceilings: "
             "Engine's known ends of sorted sets' live scores (dicts), widened by ZADD. ranges: "
             "the LRANGE windows (rangecache.py; a dict read, never written).\n"
             "Returns (replies, new_pos, calls, hits, misses, new_keys, last, unwritten): calls "
             "counts GET, SET, INCR, DECR, MSET, HSET, SADD, LPUSH, RPUSH, LPOP, RPOP, ZADD, "
             "LRANGE in that order; last is the op of the last command run (1 GET ... 13 "
             "LRANGE), 0 when none ran; unwritten counts GETs and LRANGEs that read a record not "
             "yet written (pending or in flight).");

static PyObject *run_lane(PyObject *const *args, Py_ssize_t nargs, const unsigned char *slots);

static PyObject *run(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 12 || nargs > 21) {
        PyErr_SetString(PyExc_TypeError, "run() takes 12 to 21 arguments");
        return NULL;
    }
    const unsigned char *slots = NULL;
    Py_buffer slots_view = {0};
    if (nargs > 14 && args[14] != Py_None) {
        if (PyObject_GetBuffer(args[14], &slots_view, PyBUF_SIMPLE) < 0)
            return NULL;
        if (slots_view.len != 16384) {
            PyBuffer_Release(&slots_view);
            PyErr_SetString(PyExc_ValueError, "run(): slots must be 16384 bytes");
            return NULL;
        }
        slots = slots_view.buf;
    }
    PyObject *result = run_lane(args, nargs, slots);
    if (slots != NULL)
        PyBuffer_Release(&slots_view);
    return result;
}

static PyObject *run_lane(PyObject *const *args, Py_ssize_t nargs, const unsigned char *slots) {
    PyObject *buf = args[0], *prefix = args[2], *waited = args[8];
    Cache cache_ = {args[3], args[4], args[5], nargs > 12 ? args[12] : Py_None,
                    nargs > 16 ? args[16] : NULL, nargs > 17 ? args[17] : NULL},
          *cache = &cache_;
    if ((cache->floors != NULL && !PyDict_Check(cache->floors)) ||
        (cache->ceilings != NULL && !PyDict_Check(cache->ceilings))) {
        PyErr_SetString(PyExc_TypeError, "run(): floors and ceilings must be dicts");
        return NULL;
    }
    PyObject *inflight = nargs > 15 ? args[15] : NULL;
    if (inflight != NULL && !PyDict_Check(inflight)) {
        PyErr_SetString(PyExc_TypeError, "run(): inflight must be a dict");
        return NULL;
    }
    PyObject *ranges = nargs > 18 && args[18] != Py_None ? args[18] : NULL;
    PyObject *first = nargs > 19 && args[19] != Py_None ? args[19] : NULL;
    PyObject *pick = nargs > 20 && args[20] != Py_None ? args[20] : NULL;
    if ((first != NULL && !PyCallable_Check(first)) || (pick != NULL && !PyCallable_Check(pick))) {
        PyErr_SetString(PyExc_TypeError, "run(): first and pick must be callable or None");
        return NULL;
    }
    if (ranges != NULL && !PyDict_Check(ranges)) {
        PyErr_SetString(PyExc_TypeError, "run(): ranges must be a dict");
        return NULL;
    }
    if (!PyBytes_Check(buf) || !PyBytes_Check(prefix) || !PyDict_Check(cache->young) ||
        !PyDict_Check(cache->old) || !PyDict_Check(cache->pending) ||
        !PyObject_TypeCheck(args[6], &AccessTimesType) || !PyDict_Check(waited)) {
        PyErr_SetString(PyExc_TypeError, "run(): bad argument types");
        return NULL;
    }
    AccessTimes *access = (AccessTimes *)args[6];
    double clock = PyFloat_AsDouble(args[7]);
    if (clock == -1.0 && PyErr_Occurred())
        return NULL;
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    if (pos < 0 && PyErr_Occurred())
        return NULL;
    int writes_ok = PyObject_IsTrue(args[9]);
    int resp3 = PyObject_IsTrue(args[10]);
    Py_ssize_t max_value = PyLong_AsSsize_t(args[11]);
    double deadline = nargs > 13 ? PyFloat_AsDouble(args[13]) : 0.0;
    if (writes_ok < 0 || resp3 < 0 || (max_value < 0 && PyErr_Occurred()) ||
        (deadline == -1.0 && PyErr_Occurred()))
        return NULL;
    if (cache->load != Py_None && !PyCallable_Check(cache->load)) {
        PyErr_SetString(PyExc_TypeError, "run(): load must be callable or None");
        return NULL;
    }

    const char *base = PyBytes_AS_STRING(buf);
    const char *end = base + PyBytes_GET_SIZE(buf);
    const char *p = base + (pos < PyBytes_GET_SIZE(buf) ? pos : PyBytes_GET_SIZE(buf));
    const char *pfx = PyBytes_AS_STRING(prefix);
    Py_ssize_t plen = PyBytes_GET_SIZE(prefix);
    Py_ssize_t calls[N_OPS] = {0}, hits = 0, misses = 0, new_keys = 0, dirty = 0;
    int last = OP_NONE;
    Out out = {NULL, 0, 0};

    unsigned int ran = 0;
    while (p < end) {
        const char *s = p + 1, *name, *key, *value = NULL;
        if (*p != '*')
            break;
        if (deadline > 0 && ++ran % DEADLINE_EVERY == 0 && monotonic() >= deadline)
            break;
        Py_ssize_t argc = read_len(&s, end);
        Py_ssize_t nlen = read_bulk(&s, end, &name, 7);
        int op = OP_NONE;
        if (argc == 4 && is_word(name, nlen, "LRANGE")) {
            int r = run_lrange(&s, end, pfx, plen, cache, inflight, ranges, access, clock, slots,
                               &out, &hits, &dirty);
            if (r == 0)
                break;
            if (r < 0)
                goto error;
            calls[OP_LRANGE]++;
            last = OP_LRANGE;
            p = s;
            continue;
        }
        if (argc >= 3 && argc % 2 == 1 && argc <= 2 * MAX_MSET + 1 && writes_ok &&
            is_word(name, nlen, "MSET")) {
            int r = run_mset(&s, end, (argc - 1) / 2, pfx, plen, cache, access, clock, waited,
                             max_value, slots, &new_keys);
            if (r == 0)
                break;
            if (r < 0 || out_add(&out, "+OK\r\n", 5) < 0)
                goto error;
            calls[OP_MSET]++;
            last = OP_MSET;
            p = s;
            continue;
        }
        int coll = OP_NONE;
        if (writes_ok && argc >= 2) {
            if (is_word(name, nlen, "HSET"))
                coll = OP_HSET;
            else if (is_word(name, nlen, "SADD"))
                coll = OP_SADD;
            else if (is_word(name, nlen, "LPUSH"))
                coll = OP_LPUSH;
            else if (is_word(name, nlen, "RPUSH"))
                coll = OP_RPUSH;
            else if (is_word(name, nlen, "LPOP"))
                coll = OP_LPOP;
            else if (is_word(name, nlen, "RPOP"))
                coll = OP_RPOP;
            else if (is_word(name, nlen, "ZADD"))
                coll = OP_ZADD;
            else if (is_word(name, nlen, "ZPOPMIN"))
                coll = OP_ZPOPMIN;
            else if (is_word(name, nlen, "ZPOPMAX"))
                coll = OP_ZPOPMAX;
            else if (is_word(name, nlen, "SPOP"))
                coll = OP_SPOP;
        }
        if (coll != OP_NONE) {
            int r = run_collection(coll, &s, end, argc, pfx, plen, cache, access, clock, waited,
                                   slots, max_value, resp3, first, pick, &out);
            if (r == 0)
                break;
            if (r < 0)
                goto error;
            calls[coll]++;
            last = coll;
            p = s;
            continue;
        }
        if (argc == 2 && is_word(name, nlen, "GET"))
            op = OP_GET;
        else if (argc == 3 && is_word(name, nlen, "SET"))
            op = OP_SET;
        else if (argc == 2 && is_word(name, nlen, "INCR"))
            op = OP_INCR;
        else if (argc == 2 && is_word(name, nlen, "DECR"))
            op = OP_DECR;
        if (op == OP_NONE || (op != OP_GET && !writes_ok))
            break;
        Py_ssize_t klen = read_bulk(&s, end, &key, MAX_KEY);
        if (klen < 0)
            break;
        Py_ssize_t vlen = 0;
        if (op == OP_SET && (vlen = read_bulk(&s, end, &value, max_value)) < 0)
            break;

        PyObject *mkey = meta_key(pfx, plen, key, klen);
        if (mkey == NULL)
            goto error;
        if (!served(slots, mkey, plen)) {
            Py_DECREF(mkey);
            break;
        }
        PyObject *rec = cached_record(cache, mkey);
        if (rec == NULL) {
            Py_DECREF(mkey);
            if (PyErr_Occurred())
                goto error;
            break; /* only LevelDB knows: the Python path reads it (and caches it) */
        }
        int live = rec != Py_None;
        const char *old = live ? PyBytes_AS_STRING(rec) + 1 : NULL;
        Py_ssize_t old_len = live ? PyBytes_GET_SIZE(rec) - 1 : 0;
        int ok = op == OP_GET ? plain(rec) : writable(rec, waited, mkey);
        int rc = ok < 0 ? -1 : 0;
        int stop = ok <= 0;
        char digits[24];
        if (!stop && (op == OP_INCR || op == OP_DECR)) {
            long long n = 0;
            stop = live && !canonical_int(old, old_len, &n);
            if (!stop && __builtin_add_overflow(n, op == OP_INCR ? 1LL : -1LL, &n))
                stop = 1; /* the Python path answers the overflow error */
            if (!stop) {
                value = digits;
                vlen = snprintf(digits, sizeof digits, "%lld", n);
            }
        }
        if (!stop) {
            int unwritten = op == OP_GET ? not_written(cache, inflight, mkey) : 0;
            if (unwritten < 0)
                rc = -1;
            else if (op == OP_GET) {
                dirty += unwritten;
                if (live) {
                    rc = out_bulk(&out, old, old_len);
                    if (rc == 0)
                        rc = accessed(access, mkey, clock);
                    hits++;
                } else {
                    rc = resp3 ? out_add(&out, "_\r\n", 3) : out_add(&out, "$-1\r\n", 5);
                    misses++;
                }
            } else {
                rc = store(cache, access, clock, mkey, value, vlen);
                if (rc == 0)
                    rc = op == OP_SET ? out_add(&out, "+OK\r\n", 5) : out_int(&out, value, vlen);
                new_keys += !live;
            }
        }
        Py_DECREF(rec);
        Py_DECREF(mkey);
        if (rc < 0)
            goto error;
        if (stop)
            break;
        calls[op]++;
        last = op;
        p = s;
    }

    PyObject *replies = PyBytes_FromStringAndSize(out.data ? out.data : "", out.len);
    PyMem_Free(out.data);
    if (replies == NULL)
        return NULL;
    PyObject *counts = PyTuple_New(N_OPS - 1);
    if (counts == NULL) {
        Py_DECREF(replies);
        return NULL;
    }
    for (int i = 1; i < N_OPS; i++) {
        PyObject *v = PyLong_FromSsize_t(calls[i]);
        if (v == NULL) {
            Py_DECREF(counts);
            Py_DECREF(replies);
            return NULL;
        }
        PyTuple_SET_ITEM(counts, i - 1, v);
    }
    return Py_BuildValue("(NnNnnnin)", replies, (Py_ssize_t)(p - base), counts, hits, misses,
                         new_keys, last, dirty);

error:
    PyMem_Free(out.data);
    return NULL;
}

/* ---- the write batch of a commit --------------------------------------------------------- */

#define NS_BINLOG 0x04

/* Whether a change belongs in the binlog (binlog.loggable): not the log itself, nor the node's
 * own bookkeeping (the last fsync mark 0x00 'T' and the last LogID 0x00 'L'). */
static int loggable(const char *k, Py_ssize_t n) {
    if (n >= 1 && (unsigned char)k[0] == NS_BINLOG)
        return 0;
    return !(n == 2 && k[0] == 0 && (k[1] == 'T' || k[1] == 'L'));
}

PyDoc_STRVAR(write_pending_doc,
             "write_pending(pending, put, delete, time_ms, log, max_cached)\n--\n\n"
             "Call put(key, value) or delete(key) for every entry of the pending dict (None "
             "is a delete). Returns (record, large): the binlog record of the loggable changes "
             "in binlog.encode_record's format (None when there are none or log is false), and "
             "the keys whose values are longer than max_cached.");

static PyObject *write_pending(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6 || !PyDict_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "write_pending(pending, put, delete, time_ms, log, "
                                         "max_cached)");
        return NULL;
    }
    PyObject *pending = args[0], *put = args[1], *del = args[2];
    unsigned long long time_ms = PyLong_AsUnsignedLongLong(args[3]);
    int log = PyObject_IsTrue(args[4]);
    Py_ssize_t max_cached = PyLong_AsSsize_t(args[5]);
    if (PyErr_Occurred() || log < 0)
        return NULL;
    PyObject *large = PyList_New(0);
    if (large == NULL)
        return NULL;
    Py_ssize_t pos = 0, size = 12, count = 0;
    PyObject *k, *v;
    while (PyDict_Next(pending, &pos, &k, &v)) {
        if (!PyBytes_Check(k) || (v != Py_None && !PyBytes_Check(v))) {
            PyErr_SetString(PyExc_TypeError, "pending holds bytes keys and bytes or None");
            goto error;
        }
        PyObject *call_args[2] = {k, v};
        PyObject *r = v == Py_None ? PyObject_Vectorcall(del, call_args, 1, NULL)
                                   : PyObject_Vectorcall(put, call_args, 2, NULL);
        if (r == NULL)
            goto error;
        Py_DECREF(r);
        if (v != Py_None && PyBytes_GET_SIZE(v) > max_cached && PyList_Append(large, k) < 0)
            goto error;
        if (log && loggable(PyBytes_AS_STRING(k), PyBytes_GET_SIZE(k))) {
            size += 8 + PyBytes_GET_SIZE(k) + (v == Py_None ? 0 : PyBytes_GET_SIZE(v));
            count++;
        }
    }
    if (!count)
        return Py_BuildValue("(ON)", Py_None, large);
    PyObject *record = PyBytes_FromStringAndSize(NULL, size);
    if (record == NULL)
        goto error;
    char *w = PyBytes_AS_STRING(record);
    for (int i = 0; i < 8; i++)
        w[i] = (char)((time_ms >> (56 - 8 * i)) & 0xff);
    put_u32(w + 8, count);
    w += 12;
    pos = 0;
    while (PyDict_Next(pending, &pos, &k, &v)) {
        Py_ssize_t kn = PyBytes_GET_SIZE(k);
        if (!loggable(PyBytes_AS_STRING(k), kn))
            continue;
        put_u32(w, kn);
        memcpy(w + 4, PyBytes_AS_STRING(k), (size_t)kn);
        w += 4 + kn;
        if (v == Py_None) {
            memset(w, 0xff, 4);
            w += 4;
        } else {
            Py_ssize_t vn = PyBytes_GET_SIZE(v);
            put_u32(w, vn);
            memcpy(w + 4, PyBytes_AS_STRING(v), (size_t)vn);
            w += 4 + vn;
        }
    }
    return Py_BuildValue("(NN)", record, large);

error:
    Py_DECREF(large);
    return NULL;
}

/* ---- replies read from a LevelDB iterator ------------------------------------------------- */

static int out_item(Out *o, PyObject *item, Py_ssize_t cut) {
    if (!PyBytes_Check(item)) {
        PyErr_SetString(PyExc_TypeError, "encode_bulks: items are bytes or (bytes, bytes)");
        return -1;
    }
    Py_ssize_t n = PyBytes_GET_SIZE(item);
    if (cut > n)
        cut = n;
    return out_bulk(o, PyBytes_AS_STRING(item) + cut, n - cut);
}

PyDoc_STRVAR(encode_bulks_doc,
             "encode_bulks(iterator, cut)\n--\n\n"
             "RESP bulk strings of what iterator yields, in one bytes object: a bytes item is "
             "one bulk (without its first cut bytes), a (key, value) pair two (the key without "
             "its first cut bytes). Returns (body, count of bulks): the array header is the "
             "caller's (an array, a map or a set).");

static PyObject *encode_bulks(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "encode_bulks(iterator, cut)");
        return NULL;
    }
    Py_ssize_t cut = PyLong_AsSsize_t(args[1]);
    if (cut < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "cut must be >= 0");
        return NULL;
    }
    PyObject *it = PyObject_GetIter(args[0]);
    if (it == NULL)
        return NULL;
    Out out = {NULL, 0, 0};
    Py_ssize_t count = 0;
    PyObject *item;
    while ((item = PyIter_Next(it)) != NULL) {
        int rc;
        if (PyTuple_Check(item) && PyTuple_GET_SIZE(item) == 2) {
            rc = out_item(&out, PyTuple_GET_ITEM(item, 0), cut);
            if (rc == 0)
                rc = out_item(&out, PyTuple_GET_ITEM(item, 1), 0);
            count += 2;
        } else {
            rc = out_item(&out, item, cut);
            count += 1;
        }
        Py_DECREF(item);
        if (rc < 0)
            break;
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        PyMem_Free(out.data);
        return NULL;
    }
    PyObject *body = PyBytes_FromStringAndSize(out.data ? out.data : "", out.len);
    PyMem_Free(out.data);
    if (body == NULL)
        return NULL;
    return Py_BuildValue("(Nn)", body, count);
}

/* The names of the lane's commands (those run() may take; it decides on the rest itself). */
static const char *const LANE_NAMES[] = {"GET",  "SET",    "INCR",    "DECR",    "MSET",
                                         "HSET", "SADD",   "LPUSH",   "RPUSH",   "LPOP",
                                         "RPOP", "ZADD",   "LRANGE",  "ZPOPMIN", "ZPOPMAX",
                                         "SPOP", NULL};

PyDoc_STRVAR(leads_doc, "leads(buf, pos)\n--\n\n"
                        "Whether the command at buf[pos:] is complete enough to show its name "
                        "and names one of the lane's commands (run() may take it): a cheap look "
                        "before gathering run()'s arguments.");

static PyObject *leads(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "leads(buf, pos)");
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    if (pos < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "pos must be >= 0");
        return NULL;
    }
    const char *base = PyBytes_AS_STRING(args[0]);
    const char *end = base + PyBytes_GET_SIZE(args[0]);
    if (pos >= end - base || base[pos] != '*')
        Py_RETURN_FALSE;
    const char *s = base + pos + 1, *name;
    if (read_len(&s, end) < 2)
        Py_RETURN_FALSE;
    Py_ssize_t nlen = read_bulk(&s, end, &name, 7);
    for (int i = 0; nlen > 0 && LANE_NAMES[i] != NULL; i++)
        if (is_word(name, nlen, LANE_NAMES[i]))
            Py_RETURN_TRUE;
    Py_RETURN_FALSE;
}

/* ---- the requests of a read, parsed --------------------------------------------------- */

PyDoc_STRVAR(scan_doc,
             "scan(buf, pos, max_commands, max_bulk)\n--\n\n"
             "The well-formed multibulk commands of buf from pos, up to max_commands of them: "
             "(commands, new_pos), each command a list of its arguments (bytes). Only the plain "
             "form is taken (canonical lengths of at most 9 digits, at least one argument, every "
             "bulk within max_bulk and followed by CRLF); it stops at anything else (an inline "
             "command, an unusual or bad header, a command not complete yet), which the caller's "
             "parser (stack/core/resp.py, the reference) then reads and answers.");

static PyObject *scan(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "scan(buf, pos, max_commands, max_bulk)");
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    Py_ssize_t max_commands = PyLong_AsSsize_t(args[2]);
    Py_ssize_t max_bulk = PyLong_AsSsize_t(args[3]);
    if (PyErr_Occurred())
        return NULL;
    const char *base = PyBytes_AS_STRING(args[0]);
    const char *end = base + PyBytes_GET_SIZE(args[0]);
    const char *p = base + (pos < 0 ? 0 : pos < end - base ? pos : end - base);
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    while (max_commands > 0 && p < end && *p == '*') {
        const char *s = p + 1;
        Py_ssize_t argc = read_len(&s, end);
        /* each argument takes at least 6 bytes ("$0\r\n\r\n"): more than the rest can hold is a
         * command still arriving (or a bad one): the careful parser decides */
        if (argc < 1 || argc > (end - s) / 6)
            break;
        PyObject *cmd = PyList_New(argc);
        if (cmd == NULL)
            goto error;
        Py_ssize_t i = 0;
        for (; i < argc; i++) {
            const char *data;
            Py_ssize_t n = read_bulk(&s, end, &data, max_bulk);
            if (n < 0)
                break;
            PyObject *arg = PyBytes_FromStringAndSize(data, n);
            if (arg == NULL) {
                Py_DECREF(cmd);
                goto error;
            }
            PyList_SET_ITEM(cmd, i, arg);
        }
        if (i < argc) { /* the items not set are NULL: the list's dealloc skips them */
            Py_DECREF(cmd);
            break;
        }
        int rc = PyList_Append(out, cmd);
        Py_DECREF(cmd);
        if (rc < 0)
            goto error;
        p = s;
        max_commands--;
    }
    return Py_BuildValue("(Nn)", out, (Py_ssize_t)(p - base));

error:
    Py_DECREF(out);
    return NULL;
}

/* ---- take(): the lane for one client, its bookkeeping included ------------------------- */

/* The attribute names take() reads and writes, interned once. */
enum {
    A_DB, A_PREFIX, A_RESP3, A_CACHE, A_CACHE_OLD, A_PENDING, A_ACCESS, A_CLOCK, A_WAITED,
    A_WRITES_OK, A_INFLIGHT, A_FLOORS, A_CEILINGS, A_ENTRIES, A_CACHE_ENTRIES, A_ROTATE, A_OUT,
    A_OUT_BYTES, A_HELD_REPLIES, A_LAST_COMMAND, A_NAME, A_HITS, A_MISSES, A_CALLS, A_USEC,
    A_HISTOGRAM, A_UNCLEAN, A_WROTE, A_COUNT, A_PHYS, A_CLOSING, A_LAST_INTERACTION, A_NET_IN,
    A_DIRTY_READS, A_FAILED_BATCHES, A_FAILURES_SEEN, A_TURN_SECONDS, A_READ, N_ATTRS
};
static const char *const ATTR_NAMES[N_ATTRS] = {
    "db", "prefix", "resp3", "cache", "cache_old", "pending", "access", "clock", "waited_keys",
    "writes_ok", "inflight", "floors", "ceilings", "entries", "cache_entries", "rotate_cache",
    "out", "out_bytes", "held_replies", "last_command", "name", "hits", "misses", "calls",
    "usec", "histogram", "unclean", "wrote", "count", "phys", "closing", "last_interaction",
    "net_in", "dirty_reads", "failed_batches", "failures_seen", "turn_seconds", "_read"};
static PyObject *attr[N_ATTRS];

/* obj.name += delta (an int attribute). */
static int add_to(PyObject *obj, int name, Py_ssize_t delta) {
    PyObject *v = PyObject_GetAttr(obj, attr[name]);
    if (v == NULL)
        return -1;
    PyObject *d = PyLong_FromSsize_t(delta);
    PyObject *sum = d == NULL ? NULL : PyNumber_Add(v, d);
    Py_DECREF(v);
    Py_XDECREF(d);
    if (sum == NULL)
        return -1;
    int rc = PyObject_SetAttr(obj, attr[name], sum);
    Py_DECREF(sum);
    return rc;
}

/* list[i] += delta (the latency histogram's bucket). */
static int add_at(PyObject *list, Py_ssize_t i, Py_ssize_t delta) {
    if (!PyList_Check(list) || i < 0 || i >= PyList_GET_SIZE(list)) {
        PyErr_SetString(PyExc_TypeError, "take(): a histogram is a list of its buckets");
        return -1;
    }
    PyObject *d = PyLong_FromSsize_t(delta);
    PyObject *sum = d == NULL ? NULL : PyNumber_Add(PyList_GET_ITEM(list, i), d);
    Py_XDECREF(d);
    if (sum == NULL)
        return -1;
    return PyList_SetItem(list, i, sum); /* steals sum */
}

/* One command's statistics: entry.calls += n, entry.usec += usec, its histogram bucket. */
static int count_calls(PyObject *entry, Py_ssize_t n, Py_ssize_t usec, Py_ssize_t bucket) {
    if (add_to(entry, A_CALLS, n) < 0 || add_to(entry, A_USEC, usec) < 0)
        return -1;
    PyObject *h = PyObject_GetAttr(entry, attr[A_HISTOGRAM]);
    if (h == NULL)
        return -1;
    int rc = add_at(h, bucket, n);
    Py_DECREF(h);
    return rc;
}

/* keyspace.count(phys, new_keys, 0) */
static PyObject *call_count(PyObject *ks, PyObject *phys, Py_ssize_t new_keys) {
    PyObject *n = PyLong_FromSsize_t(new_keys);
    if (n == NULL)
        return NULL;
    PyObject *zero = PyLong_FromLong(0);
    PyObject *x = zero == NULL ? NULL
                               : PyObject_CallMethodObjArgs(ks, attr[A_COUNT], phys, n, zero, NULL);
    Py_DECREF(n);
    Py_XDECREF(zero);
    return x;
}

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

PyDoc_STRVAR(take_doc,
             "take(ctx, client, buf, pos, deadline)\n--\n\n"
             "FastLane.take in one C call: run() on buf from pos for the client (the gate said "
             "it may), its arguments read from ctx = (engine, keyspace, gate, load, entries, "
             "max_value, slots, ranges, first, pick) and the client, then its bookkeeping: the replies "
             "appended to client.out (out_bytes, held_replies), client.last_command, keyspace "
             "hits and misses, commandstats (entries[op]: calls, usec, histogram), "
             "client.unclean when a read found unwritten data, client.wrote and the key counts "
             "(keyspace.count) after writes, and the record cache rotated when full. Returns where "
             "the lane stopped (pos when it ran nothing).");

static PyObject *take(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5 || !PyTuple_Check(args[0]) || PyTuple_GET_SIZE(args[0]) != 10 ||
        !PyBytes_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "take(ctx, client, buf, pos, deadline)");
        return NULL;
    }
    PyObject *ctx = args[0], *client = args[1], *buf = args[2];
    PyObject *engine = PyTuple_GET_ITEM(ctx, 0), *ks = PyTuple_GET_ITEM(ctx, 1),
             *gate = PyTuple_GET_ITEM(ctx, 2), *entries = PyTuple_GET_ITEM(ctx, 4),
             *ranges = PyTuple_GET_ITEM(ctx, 7);
    Py_ssize_t pos = PyLong_AsSsize_t(args[3]);
    if (pos < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "pos must be >= 0");
        return NULL;
    }
    if (!PyTuple_Check(entries) || PyTuple_GET_SIZE(entries) != N_OPS) {
        PyErr_SetString(PyExc_TypeError, "take(): entries is a tuple, one per op");
        return NULL;
    }
    { /* not one of the lane's commands: no need to gather run()'s arguments */
        PyObject *la[2] = {buf, args[3]};
        PyObject *l = leads(NULL, la, 2);
        if (l == NULL)
            return NULL;
        Py_DECREF(l);
        if (l == Py_False)
            return Py_NewRef(args[3]);
    }
    PyObject *result = NULL, *db = NULL;
    PyObject *a[21] = {NULL};
    /* run()'s arguments */
    db = PyObject_GetAttr(client, attr[A_DB]);
    if (db == NULL)
        goto done;
    a[0] = Py_NewRef(buf);
    a[1] = Py_NewRef(args[3]);
    if ((a[2] = PyObject_GetAttr(db, attr[A_PREFIX])) == NULL ||
        (a[3] = PyObject_GetAttr(engine, attr[A_CACHE])) == NULL ||
        (a[4] = PyObject_GetAttr(engine, attr[A_CACHE_OLD])) == NULL ||
        (a[5] = PyObject_GetAttr(engine, attr[A_PENDING])) == NULL ||
        (a[6] = PyObject_GetAttr(ks, attr[A_ACCESS])) == NULL ||
        (a[7] = PyObject_GetAttr(ks, attr[A_CLOCK])) == NULL ||
        (a[8] = PyObject_GetAttr(ks, attr[A_WAITED])) == NULL ||
        (a[9] = PyObject_GetAttr(gate, attr[A_WRITES_OK])) == NULL ||
        (a[10] = PyObject_GetAttr(client, attr[A_RESP3])) == NULL)
        goto done;
    a[11] = Py_NewRef(PyTuple_GET_ITEM(ctx, 5));
    a[12] = Py_NewRef(PyTuple_GET_ITEM(ctx, 3));
    a[13] = Py_NewRef(args[4]);
    a[14] = Py_NewRef(PyTuple_GET_ITEM(ctx, 6));
    if ((a[15] = PyObject_GetAttr(engine, attr[A_INFLIGHT])) == NULL ||
        (a[16] = PyObject_GetAttr(engine, attr[A_FLOORS])) == NULL ||
        (a[17] = PyObject_GetAttr(engine, attr[A_CEILINGS])) == NULL ||
        (a[18] = PyObject_GetAttr(ranges, attr[A_ENTRIES])) == NULL)
        goto done;
    a[19] = Py_NewRef(PyTuple_GET_ITEM(ctx, 8));
    a[20] = Py_NewRef(PyTuple_GET_ITEM(ctx, 9));
    long long start = now_ns();
    PyObject *r = run(NULL, a, 21);
    if (r == NULL)
        goto done;
    long long elapsed_ns = now_ns() - start;
    PyObject *replies = PyTuple_GET_ITEM(r, 0), *counts = PyTuple_GET_ITEM(r, 2);
    Py_ssize_t new_pos = PyLong_AsSsize_t(PyTuple_GET_ITEM(r, 1));
    Py_ssize_t hits = PyLong_AsSsize_t(PyTuple_GET_ITEM(r, 3));
    Py_ssize_t misses = PyLong_AsSsize_t(PyTuple_GET_ITEM(r, 4));
    Py_ssize_t new_keys = PyLong_AsSsize_t(PyTuple_GET_ITEM(r, 5));
    long last = PyLong_AsLong(PyTuple_GET_ITEM(r, 6));
    Py_ssize_t unwritten = PyLong_AsSsize_t(PyTuple_GET_ITEM(r, 7));
    Py_ssize_t calls[N_OPS] = {0}, ran = 0, reads = 0;
    for (int i = 1; i < N_OPS; i++) {
        calls[i] = PyLong_AsSsize_t(PyTuple_GET_ITEM(counts, i - 1));
        ran += calls[i];
    }
    reads = calls[OP_GET] + calls[OP_LRANGE];
    int rc = 0;
    { /* the record cache: rotated once over half its size (Engine.rotate_cache) */
        PyObject *cache = PyObject_GetAttr(engine, attr[A_CACHE]);
        PyObject *limit = cache == NULL ? NULL : PyObject_GetAttr(engine, attr[A_CACHE_ENTRIES]);
        Py_ssize_t most = limit == NULL ? -1 : PyLong_AsSsize_t(limit);
        if (cache == NULL || limit == NULL || (most < 0 && PyErr_Occurred()))
            rc = -1;
        else if (PyDict_Check(cache) && PyDict_GET_SIZE(cache) > most >> 1) {
            PyObject *x = PyObject_CallMethodNoArgs(engine, attr[A_ROTATE]);
            rc = x == NULL ? -1 : 0;
            Py_XDECREF(x);
        }
        Py_XDECREF(cache);
        Py_XDECREF(limit);
    }
    if (rc < 0 || PyErr_Occurred()) {
        Py_DECREF(r);
        goto done;
    }
    if (last == OP_NONE) {
        Py_DECREF(r);
        result = Py_NewRef(args[3]);
        goto done;
    }
    Py_ssize_t elapsed_us = (Py_ssize_t)(elapsed_ns / 1000);
    Py_ssize_t bucket = 0; /* latency.py: each command at the average */
    for (unsigned long long v = (unsigned long long)(elapsed_ns / ran) >> 10; v; v >>= 1)
        bucket++;
    PyObject *out = PyObject_GetAttr(client, attr[A_OUT]);
    if (out == NULL || PyList_Append(out, replies) < 0)
        rc = -1;
    Py_XDECREF(out);
    PyObject *entry = PyTuple_GET_ITEM(entries, last);
    PyObject *name = rc < 0 ? NULL : PyObject_GetAttr(entry, attr[A_NAME]);
    if (rc < 0 || add_to(client, A_OUT_BYTES, PyBytes_GET_SIZE(replies)) < 0 ||
        add_to(client, A_HELD_REPLIES, ran) < 0 || name == NULL ||
        PyObject_SetAttr(client, attr[A_LAST_COMMAND], name) < 0 ||
        (hits && add_to(ks, A_HITS, hits) < 0) || (misses && add_to(ks, A_MISSES, misses) < 0))
        rc = -1;
    Py_XDECREF(name);
    if (rc == 0) {
        if (calls[last] == ran) { /* the usual pipeline: one command throughout */
            rc = count_calls(entry, ran, elapsed_us, bucket);
        } else {
            for (int i = 1; i < N_OPS && rc == 0; i++)
                if (calls[i])
                    rc = count_calls(PyTuple_GET_ITEM(entries, i), calls[i],
                                     elapsed_us * calls[i] / ran, bucket);
        }
    }
    if (rc == 0 && unwritten) /* its GETs read what is not written yet: the reply waits */
        rc = PyObject_SetAttr(client, attr[A_UNCLEAN], Py_True);
    if (rc == 0 && ran != reads) { /* writes */
        rc = PyObject_SetAttr(client, attr[A_WROTE], Py_True);
        if (rc == 0 && new_keys) {
            PyObject *phys = PyObject_GetAttr(db, attr[A_PHYS]);
            PyObject *x = phys == NULL ? NULL
                                       : call_count(ks, phys, new_keys);
            rc = x == NULL ? -1 : 0;
            Py_XDECREF(phys);
            Py_XDECREF(x);
        }
    }
    Py_DECREF(r);
    if (rc == 0)
        result = PyLong_FromSsize_t(new_pos);
done:
    for (int i = 0; i < 21; i++)
        Py_XDECREF(a[i]);
    Py_XDECREF(db);
    return result;
}

/* ---- Reader: a read straight to the lane, as uvloop hands it over ----------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *plain;    /* Gate.plain, bound: the one predicate (gate.py) */
    PyObject *ctx;      /* take()'s ctx (FastLane) */
    PyObject *after;    /* Server.after_commands, bound */
    PyObject *keyspace;
    PyObject *engine;
} Reader;

static int Reader_traverse(Reader *r, visitproc visit, void *arg) {
    Py_VISIT(r->plain);
    Py_VISIT(r->ctx);
    Py_VISIT(r->after);
    Py_VISIT(r->keyspace);
    Py_VISIT(r->engine);
    return 0;
}

static int Reader_clear(Reader *r) {
    Py_CLEAR(r->plain);
    Py_CLEAR(r->ctx);
    Py_CLEAR(r->after);
    Py_CLEAR(r->keyspace);
    Py_CLEAR(r->engine);
    return 0;
}

static void Reader_dealloc(Reader *r) {
    PyObject_GC_UnTrack(r);
    Reader_clear(r);
    Py_TYPE(r)->tp_free((PyObject *)r);
}

PyDoc_STRVAR(attach_doc, "attach(plain, ctx, after_commands, keyspace, engine)\n--\n\n"
                         "What data_received uses: the gate's predicate, the lane's take() "
                         "context, the server's after_commands, its keyspace and engine.");

static PyObject *Reader_attach(Reader *r, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5 || !PyCallable_Check(args[0]) || !PyTuple_Check(args[1]) ||
        !PyCallable_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "attach(plain, ctx, after_commands, keyspace, engine)");
        return NULL;
    }
    Py_XSETREF(r->plain, Py_NewRef(args[0]));
    Py_XSETREF(r->ctx, Py_NewRef(args[1]));
    Py_XSETREF(r->after, Py_NewRef(args[2]));
    Py_XSETREF(r->keyspace, Py_NewRef(args[3]));
    Py_XSETREF(r->engine, Py_NewRef(args[4]));
    Py_RETURN_NONE;
}

/* self._read(data, pos, deadline, unclean): the Python path for the rest of the read (pos:
 * where the lane stopped; -1 when the client was not plain). */
static PyObject *read_rest(PyObject *self, PyObject *data, Py_ssize_t pos, double deadline,
                           int unclean) {
    PyObject *p = PyLong_FromSsize_t(pos), *d = PyFloat_FromDouble(deadline);
    PyObject *x = p == NULL || d == NULL
                      ? NULL
                      : PyObject_CallMethodObjArgs(self, attr[A_READ], data, p, d,
                                                   unclean ? Py_True : Py_False, NULL);
    Py_XDECREF(p);
    Py_XDECREF(d);
    return x;
}

PyDoc_STRVAR(data_received_doc,
             "data_received(data)\n--\n\n"
             "Client.data_received: stamp the read (last_interaction, the keyspace's clock, "
             "net_in); when the gate says the client is plain (Gate.plain), run the lane on the "
             "bytes as they came (take()) and, when it ran them all, hand the replies to "
             "after_commands; the rest of the read goes to self._read(data, pos, deadline, "
             "unclean), the Python path (all of it, pos -1, when the client is not plain).");

static PyObject *Reader_data_received(Reader *r, PyObject *data) {
    PyObject *self = (PyObject *)r;
    if (r->plain == NULL || !PyBytes_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "data_received(bytes) after attach()");
        return NULL;
    }
    PyObject *closing = PyObject_GetAttr(self, attr[A_CLOSING]);
    if (closing == NULL)
        return NULL;
    int is_closing = PyObject_IsTrue(closing);
    Py_DECREF(closing);
    if (is_closing != 0)
        return is_closing < 0 ? NULL : Py_NewRef(Py_None);
    double now = monotonic();
    PyObject *stamp = PyFloat_FromDouble(now);
    if (stamp == NULL)
        return NULL;
    int rc = PyObject_SetAttr(self, attr[A_LAST_INTERACTION], stamp);
    if (rc == 0)
        rc = PyObject_SetAttr(r->keyspace, attr[A_CLOCK], stamp);
    Py_DECREF(stamp);
    if (rc < 0 || add_to(self, A_NET_IN, PyBytes_GET_SIZE(data)) < 0)
        return NULL;
    PyObject *verdict = PyObject_CallOneArg(r->plain, self);
    if (verdict == NULL)
        return NULL;
    int plain = PyObject_IsTrue(verdict);
    Py_DECREF(verdict);
    if (plain <= 0)
        return plain < 0 ? NULL : read_rest(self, data, -1, 0.0, 0);
    /* the plain state: the lane runs what it can of the bytes as they came */
    PyObject *dirty = PyObject_GetAttr(r->engine, attr[A_DIRTY_READS]);
    PyObject *failed = dirty == NULL ? NULL : PyObject_GetAttr(r->engine, attr[A_FAILED_BATCHES]);
    PyObject *turn = failed == NULL ? NULL : PyObject_GetAttr(self, attr[A_TURN_SECONDS]);
    double deadline = turn == NULL ? -1.0 : now + PyFloat_AsDouble(turn);
    PyObject *result = NULL, *args[5] = {r->ctx, self, data, NULL, NULL};
    if (turn == NULL || PyErr_Occurred() ||
        PyObject_SetAttr(self, attr[A_FAILURES_SEEN], failed) < 0 ||
        PyObject_SetAttr(self, attr[A_UNCLEAN], Py_False) < 0)
        goto done;
    if ((args[3] = PyLong_FromLong(0)) == NULL || (args[4] = PyFloat_FromDouble(deadline)) == NULL)
        goto done;
    PyObject *taken = take(NULL, args, 5);
    if (taken == NULL)
        goto done;
    Py_ssize_t pos = PyLong_AsSsize_t(taken);
    Py_DECREF(taken);
    if (pos < 0 && PyErr_Occurred())
        goto done;
    /* whether what the lane ran read data not yet written: then its replies wait */
    PyObject *u = PyObject_GetAttr(self, attr[A_UNCLEAN]);
    PyObject *dirty_now = u == NULL ? NULL : PyObject_GetAttr(r->engine, attr[A_DIRTY_READS]);
    int unclean = dirty_now == NULL ? -1 : PyObject_IsTrue(u);
    if (unclean == 0) {
        unclean = PyObject_RichCompareBool(dirty, dirty_now, Py_NE);
    }
    Py_XDECREF(u);
    Py_XDECREF(dirty_now);
    if (unclean < 0)
        goto done;
    if (pos >= PyBytes_GET_SIZE(data))
        result = PyObject_CallFunctionObjArgs(r->after, self, unclean ? Py_False : Py_True, NULL);
    else
        result = read_rest(self, data, pos, deadline, unclean);
done:
    Py_XDECREF(dirty);
    Py_XDECREF(failed);
    Py_XDECREF(turn);
    Py_XDECREF(args[3]);
    Py_XDECREF(args[4]);
    return result;
}

static PyMethodDef Reader_methods[] = {
    {"attach", (PyCFunction)(void (*)(void))Reader_attach, METH_FASTCALL, attach_doc},
    {"data_received", (PyCFunction)Reader_data_received, METH_O, data_received_doc},
    {NULL, NULL, 0, NULL}};

static PyTypeObject ReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "stack.server._fastlane.Reader",
    .tp_basicsize = sizeof(Reader),
    .tp_dealloc = (destructor)Reader_dealloc,
    .tp_traverse = (traverseproc)Reader_traverse,
    .tp_clear = (inquiry)Reader_clear,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The base of Client: data_received in C (a read straight to the lane).",
    .tp_methods = Reader_methods,
    .tp_new = PyType_GenericNew,
};

static PyObject *slot(PyObject *self, PyObject *arg) {
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "slot() takes bytes");
        return NULL;
    }
    return PyLong_FromUnsignedLong(key_slot(PyBytes_AS_STRING(arg), PyBytes_GET_SIZE(arg)));
}

static PyMethodDef methods[] = {
    {"run", (PyCFunction)(void (*)(void))run, METH_FASTCALL, run_doc},
    {"write_pending", (PyCFunction)(void (*)(void))write_pending, METH_FASTCALL,
     write_pending_doc},
    {"encode_bulks", (PyCFunction)(void (*)(void))encode_bulks, METH_FASTCALL,
     encode_bulks_doc},
    {"bulk_slice", (PyCFunction)(void (*)(void))bulk_slice, METH_FASTCALL, bulk_slice_doc},
    {"scan", (PyCFunction)(void (*)(void))scan, METH_FASTCALL, scan_doc},
    {"leads", (PyCFunction)(void (*)(void))leads, METH_FASTCALL, leads_doc},
    {"take", (PyCFunction)(void (*)(void))take, METH_FASTCALL, take_doc},
    {"slot", slot, METH_O, "slot(key) -> the Redis Cluster slot of key (tests compare it)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT,
                                    "_fastlane",
                                    "Plain GET and SET of a pipelined chunk, and the write batch "
                                    "of a commit, in C.",
                                    -1,
                                    methods,
                                    NULL,
                                    NULL,
                                    NULL,
                                    NULL};

PyMODINIT_FUNC PyInit__fastlane(void) {
    for (int i = 0; i < N_ATTRS; i++)
        if (attr[i] == NULL && (attr[i] = PyUnicode_InternFromString(ATTR_NAMES[i])) == NULL)
            return NULL;
    if (PyType_Ready(&AccessTimesType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyType_Ready(&ReaderType) < 0 || PyModule_AddObjectRef(m, "Reader", (PyObject *)&ReaderType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&AccessTimesType);
    if (PyModule_AddObject(m, "AccessTimes", (PyObject *)&AccessTimesType) < 0) {
        Py_DECREF(&AccessTimesType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
