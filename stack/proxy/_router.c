/*
 * The proxy's data path in C: routing a read of pipelined requests, and cutting a backend's
 * bytes into whole replies. Both only handle the common, canonical case and stop at anything
 * else, leaving it to the Python path (client.py, replies.py), which stays the reference: it
 * parses, checks and names every error. So nothing here decides a reply.
 *
 * route(buf, pos, names, arities, backends, calls, slot_ops, max_bulk, max_argc)
 *     Reads complete multibulk requests from buf[pos:] for as long as each one is a plain
 *     one-key command (names: lower-case name -> index of its rule; arities: the rules'
 *     arities, array('i')) with its key at argument 1, of the right arity, whose slot has a
 *     backend (backends: 16384 bytes, the backend index of each slot, 255 = not plain: no
 *     owner, migrating). Counts each command in calls[index] and slot_ops[slot] (array('Q')).
 *     Stops at MAX_RUN commands, at an inline command, an unusual or incomplete header, an
 *     argument over max_bulk or an argc over max_argc, or another command.
 *     Returns (end, n, idx, order, parts, last): n commands end at ``end``; when they all go to
 *     backend ``idx``, order and parts are None (the bytes buf[pos:end] go as they are);
 *     otherwise order holds each command's backend index (bytes) and parts maps each index to
 *     its commands' bytes, in order; ``last`` is the rule index of the last one routed (the
 *     client's ``cmd=`` in CLIENT LIST).
 *
 * split(data, pos, max_bulk) -> (replies, end, bad, errors)
 *     The whole RESP2/RESP3 replies in data[pos:] as bytes objects (each exactly its bytes),
 *     where they end, and how many are errors (- or !: only batches with one may hold a
 *     redirect). bad is True when it stopped at something unusual rather than at an
 *     incomplete reply (a non-canonical length, an unknown type byte, an attribute, nesting
 *     deeper than MAX_DEPTH): the careful parser then decides.
 */
#include "../core/resp_scan.h"

#define MAX_RUN 1024 /* commands per route() call: bounded work and stack arrays */
#define MAX_NAME 32  /* longer command names take the Python path */
#define NOT_PLAIN 255
#define MAX_DEPTH 32
#define MAX_DIGITS 18 /* integer replies with more digits: the careful parser checks the range */

typedef struct {
    Py_buffer view;
    int held;
} Buf;

static int get_buffer(PyObject *obj, Buf *b, int writable, Py_ssize_t min_len,
                      const char *what) {
    if (PyObject_GetBuffer(obj, &b->view, writable ? PyBUF_WRITABLE : PyBUF_SIMPLE) < 0)
        return -1;
    b->held = 1;
    if (b->view.len < min_len) {
        PyErr_Format(PyExc_ValueError, "route(): %s is too short", what);
        return -1;
    }
    return 0;
}

static void release(Buf *bufs, int n) {
    for (int i = 0; i < n; i++)
        if (bufs[i].held)
            PyBuffer_Release(&bufs[i].view);
}

/* The rule index of a command name (any case), or -1 (not a plain one-key command); -2 with an
 * exception set. */
static long rule_index(PyObject *names, const char *name, Py_ssize_t len) {
    char lower[MAX_NAME];
    for (Py_ssize_t i = 0; i < len; i++) {
        char c = name[i];
        lower[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    PyObject *key = PyBytes_FromStringAndSize(lower, len);
    if (key == NULL)
        return -2;
    PyObject *v = PyDict_GetItemWithError(names, key);
    Py_DECREF(key);
    if (v == NULL)
        return PyErr_Occurred() ? -2 : -1;
    long idx = PyLong_AsLong(v);
    if (idx == -1 && PyErr_Occurred())
        return -2;
    return idx;
}

PyDoc_STRVAR(route_doc,
             "route(buf, pos, names, arities, backends, calls, slot_ops, max_bulk, max_argc)\n"
             "--\n\n"
             "The run of plain one-key requests at buf[pos:] and where each goes: "
             "(end, n, idx, order, parts, last). See _router.c.");

static PyObject *route(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "route() takes 9 arguments");
        return NULL;
    }
    PyObject *buf = args[0], *names = args[2];
    if (!PyBytes_Check(buf) || !PyDict_Check(names)) {
        PyErr_SetString(PyExc_TypeError, "route(): buf must be bytes, names a dict");
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    Py_ssize_t max_bulk = PyLong_AsSsize_t(args[7]);
    Py_ssize_t max_argc = PyLong_AsSsize_t(args[8]);
    if ((pos == -1 || max_bulk == -1 || max_argc == -1) && PyErr_Occurred())
        return NULL;
    if (pos < 0 || pos > PyBytes_GET_SIZE(buf)) {
        PyErr_SetString(PyExc_ValueError, "route(): pos out of range");
        return NULL;
    }
    Buf bufs[4] = {{{0}, 0}, {{0}, 0}, {{0}, 0}, {{0}, 0}};
    if (get_buffer(args[3], &bufs[0], 0, 0, "arities") < 0 ||
        get_buffer(args[4], &bufs[1], 0, 16384, "backends") < 0 ||
        get_buffer(args[5], &bufs[2], 1, 0, "calls") < 0 ||
        get_buffer(args[6], &bufs[3], 1, 16384 * 8, "slot_ops") < 0) {
        release(bufs, 4);
        return NULL;
    }
    const int *arities = bufs[0].view.buf;
    Py_ssize_t n_rules = bufs[0].view.len / (Py_ssize_t)sizeof(int);
    const unsigned char *backends = bufs[1].view.buf;
    unsigned long long *calls = bufs[2].view.buf;
    Py_ssize_t n_calls = bufs[2].view.len / 8;
    unsigned long long *slot_ops = bufs[3].view.buf;

    const char *base = PyBytes_AS_STRING(buf);
    const char *end = base + PyBytes_GET_SIZE(buf);
    const char *p = base + pos;
    Py_ssize_t starts[MAX_RUN + 1];
    unsigned char order[MAX_RUN];
    int n = 0, mixed = 0;
    const char *last_name = NULL;
    Py_ssize_t last_len = 0;
    long last_idx = -1, routed = -1;

    while (n < MAX_RUN && p < end && *p == '*') {
        const char *s = p + 1, *name, *key, *arg;
        Py_ssize_t argc = read_len(&s, end);
        if (argc < 2 || argc > max_argc)
            break;
        Py_ssize_t nlen = read_bulk(&s, end, &name, MAX_NAME);
        if (nlen <= 0)
            break;
        long idx;
        if (last_name != NULL && nlen == last_len && memcmp(name, last_name, (size_t)nlen) == 0) {
            idx = last_idx;
        } else {
            idx = rule_index(names, name, nlen);
            if (idx == -2) {
                release(bufs, 4);
                return NULL;
            }
            last_name = name;
            last_len = nlen;
            last_idx = idx;
        }
        if (idx < 0 || idx >= n_rules || idx >= n_calls)
            break;
        int arity = arities[idx];
        if (arity > 0 ? argc != arity : argc < -arity)
            break;
        Py_ssize_t klen = read_bulk(&s, end, &key, max_bulk);
        if (klen < 0)
            break;
        Py_ssize_t i = 2;
        for (; i < argc; i++)
            if (read_bulk(&s, end, &arg, max_bulk) < 0)
                break;
        if (i < argc)
            break;
        unsigned int slot = key_slot(key, klen);
        unsigned char b = backends[slot];
        if (b == NOT_PLAIN)
            break;
        if (n > 0 && b != order[0])
            mixed = 1;
        calls[idx]++;
        slot_ops[slot]++;
        routed = idx;
        starts[n] = p - base;
        order[n++] = b;
        p = s;
    }
    starts[n] = p - base;
    release(bufs, 4);
    if (n == 0 || !mixed)
        return Py_BuildValue("(niiOOl)", p - base, n, n ? (int)order[0] : -1, Py_None, Py_None,
                             routed);

    PyObject *order_bytes = PyBytes_FromStringAndSize((const char *)order, n);
    PyObject *parts = PyDict_New();
    if (order_bytes == NULL || parts == NULL)
        goto error;
    unsigned char done[256] = {0};
    for (int first = 0; first < n; first++) {
        unsigned char b = order[first];
        if (done[b])
            continue;
        done[b] = 1;
        Py_ssize_t size = 0;
        for (int j = first; j < n; j++)
            if (order[j] == b)
                size += starts[j + 1] - starts[j];
        PyObject *part = PyBytes_FromStringAndSize(NULL, size);
        if (part == NULL)
            goto error;
        char *out = PyBytes_AS_STRING(part);
        for (int j = first; j < n; j++)
            if (order[j] == b) {
                Py_ssize_t len = starts[j + 1] - starts[j];
                memcpy(out, base + starts[j], (size_t)len);
                out += len;
            }
        PyObject *k = PyLong_FromLong(b);
        int rc = k == NULL ? -1 : PyDict_SetItem(parts, k, part);
        Py_XDECREF(k);
        Py_DECREF(part);
        if (rc < 0)
            goto error;
    }
    return Py_BuildValue("(niiNNl)", p - base, n, (int)order[0], order_bytes, parts, routed);
error:
    Py_XDECREF(order_bytes);
    Py_XDECREF(parts);
    return NULL;
}

/* -- replies ------------------------------------------------------------------------------- */

enum { WHOLE = 0, INCOMPLETE = 1, BAD = 2 };

/* Moves *p past the CRLF that ends the line at *p; INCOMPLETE when there is none yet, BAD
 * for a bare CR. */
static int skip_line(const char **p, const char *end) {
    const char *cr = memchr(*p, '\r', (size_t)(end - *p));
    if (cr == NULL || cr + 1 >= end)
        return INCOMPLETE;
    if (cr[1] != '\n')
        return BAD;
    *p = cr + 2;
    return WHOLE;
}

/* A length after a type byte: canonical digits, or -1 when minus_one, then CRLF. */
static int read_count(const char **p, const char *end, Py_ssize_t *n, int minus_one) {
    const char *s = *p;
    if (minus_one && s < end && *s == '-') {
        Py_ssize_t avail = end - s;
        if (memcmp(s, "-1\r\n", (size_t)(avail < 4 ? avail : 4)) != 0)
            return BAD;
        if (avail < 4)
            return INCOMPLETE;
        *n = -1;
        *p = s + 4;
        return WHOLE;
    }
    Py_ssize_t v = 0;
    int digits = 0;
    while (s < end && *s >= '0' && *s <= '9') {
        if (digits == 9 || (digits == 1 && v == 0))
            return BAD;
        v = v * 10 + (*s - '0');
        digits++;
        s++;
    }
    if (s == end)
        return INCOMPLETE;
    if (digits == 0 || *s != '\r')
        return BAD;
    if (s + 1 == end)
        return INCOMPLETE;
    if (s[1] != '\n')
        return BAD;
    *n = v;
    *p = s + 2;
    return WHOLE;
}

static int skip_reply(const char **p, const char *end, Py_ssize_t max_bulk, int depth) {
    if (*p >= end)
        return INCOMPLETE;
    const char *s = *p + 1;
    Py_ssize_t n;
    int rc;
    switch (**p) {
    case '+':
    case '-':
        rc = skip_line(&s, end);
        break;
    case ':': { /* what strict_int takes: no leading zero, no -0, and (here) at most 18 digits */
        const char *t = s;
        if (t < end && *t == '-')
            t++;
        const char *digits = t;
        while (t < end && *t >= '0' && *t <= '9' && t - digits <= MAX_DIGITS)
            t++;
        Py_ssize_t n_digits = t - digits;
        if (n_digits > MAX_DIGITS || (n_digits > 0 && *digits == '0' && (n_digits > 1 || digits > s)))
            return BAD;
        if (t == end || (t + 1 == end && *t == '\r' && n_digits > 0))
            return INCOMPLETE;
        if (n_digits == 0 || t[0] != '\r' || t[1] != '\n')
            return BAD;
        s = t + 2;
        rc = WHOLE;
        break;
    }
    case '_':
        if (end - s < 2)
            return INCOMPLETE;
        if (s[0] != '\r' || s[1] != '\n')
            return BAD;
        s += 2;
        rc = WHOLE;
        break;
    case '#':
        if (end - s < 3)
            return INCOMPLETE;
        if ((s[0] != 't' && s[0] != 'f') || s[1] != '\r' || s[2] != '\n')
            return BAD;
        s += 3;
        rc = WHOLE;
        break;
    case '$':
    case '=':
    case '!':
        rc = read_count(&s, end, &n, **p == '$');
        if (rc != WHOLE)
            return rc;
        if (n < 0)
            break;
        if (n > max_bulk)
            return BAD;
        if (end - s < n + 2)
            return INCOMPLETE;
        if (s[n] != '\r' || s[n + 1] != '\n')
            return BAD;
        if (**p == '=' && (n < 4 || s[3] != ':')) /* a verbatim string names its format */
            return BAD;
        s += n + 2;
        break;
    case '*':
    case '%':
    case '~':
    case '>':
        if (depth >= MAX_DEPTH)
            return BAD;
        rc = read_count(&s, end, &n, **p == '*');
        if (rc != WHOLE)
            return rc;
        if (**p == '%')
            n *= 2;
        for (Py_ssize_t i = 0; i < n; i++) {
            rc = skip_reply(&s, end, max_bulk, depth + 1);
            if (rc != WHOLE)
                return rc;
        }
        break;
    default: /* doubles and big numbers (their syntax is the careful parser's), attributes,
                inline text, anything else: the careful parser decides */
        return BAD;
    }
    if (rc == WHOLE)
        *p = s;
    return rc;
}

PyDoc_STRVAR(split_doc, "split(data, pos, max_bulk)\n--\n\n"
                        "The whole replies in data[pos:]: (list of bytes, end, bad, errors). See "
                        "_router.c.");

static PyObject *split(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "split(data: bytes, pos, max_bulk)");
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    Py_ssize_t max_bulk = PyLong_AsSsize_t(args[2]);
    if ((pos == -1 || max_bulk == -1) && PyErr_Occurred())
        return NULL;
    const char *base = PyBytes_AS_STRING(args[0]);
    Py_ssize_t size = PyBytes_GET_SIZE(args[0]);
    if (pos < 0 || pos > size) {
        PyErr_SetString(PyExc_ValueError, "split(): pos out of range");
        return NULL;
    }
    const char *end = base + size, *p = base + pos;
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    int rc = WHOLE;
    Py_ssize_t errors = 0;
    while (p < end) {
        const char *s = p;
        rc = skip_reply(&s, end, max_bulk, 0);
        if (rc != WHOLE)
            break;
        PyObject *reply;
        if (p == base && s == end) { /* the whole buffer is one reply: no copy */
            reply = args[0];
            Py_INCREF(reply);
        } else {
            reply = PyBytes_FromStringAndSize(p, s - p);
            if (reply == NULL)
                goto error;
        }
        int err = PyList_Append(out, reply);
        Py_DECREF(reply);
        if (err < 0)
            goto error;
        if (*p == '-' || *p == '!')
            errors++;
        p = s;
    }
    return Py_BuildValue("(NnOn)", out, p - base, rc == BAD ? Py_True : Py_False, errors);
error:
    Py_DECREF(out);
    return NULL;
}

static PyMethodDef methods[] = {
    {"route", (PyCFunction)(void (*)(void))route, METH_FASTCALL, route_doc},
    {"split", (PyCFunction)(void (*)(void))split, METH_FASTCALL, split_doc},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT,
                                    "_router",
                                    "The proxy's routing of pipelined requests and cutting of "
                                    "replies, in C.",
                                    -1,
                                    methods,
                                    NULL,
                                    NULL,
                                    NULL,
                                    NULL};

PyMODINIT_FUNC PyInit__router(void) { return PyModule_Create(&module); }
