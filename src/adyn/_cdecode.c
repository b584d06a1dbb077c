/* adyn._cdecode: the whole-item decoder of a model, compiled.
 *
 * The optional native twin of the generated decoder in _decoder.py. `_decoder.native_plan`
 * describes a model as nested tuples (one per field: where it is on the wire, how its value is
 * made, how its snapshot part is made); `Decoder(plan)` keeps that plan as C structs and turns
 * a stored item into the loaded object, its state set, exactly as the generated function does.
 * It is only the fast way: anything it does not expect (a missing attribute, another type, a
 * conversion that raises an Exception) sends the item to the plan's `careful` function, which
 * gives the answer or names the field in its error. Only BaseExceptions that are not
 * Exceptions (KeyboardInterrupt) pass through, as in the generated function.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>

/* how a value is made from its attribute (see _decoder.py: the K_* names) */
enum {
    K_TAKE = 0,      /* av[tag] itself */
    K_INT = 1,       /* int(av[tag]), av[tag] a str */
    K_FLOAT = 2,     /* float(av[tag]), av[tag] a str */
    K_CALL_TAG = 3,  /* fn(av[tag]) */
    K_DATETIME = 4,  /* fromisoformat(av[tag]), UTC when naive */
    K_SET = 5,       /* set(av[tag]) */
    K_FROZENSET = 6, /* frozenset(av[tag]) */
    K_LIST = 7,      /* [element(x) for x in av[tag]] */
    K_DICT = 8,      /* {k: element(x) for k, x in av[tag].items()} */
    K_MODEL = 9,     /* a nested model built from av["M"] */
    K_DECODE = 10,   /* fn(av): the codec's own decode */
};

/* how a field's snapshot part is made (see _decoder.py: the P_* names) */
enum {
    P_ATOM = 0,   /* the value itself */
    P_WIRE = 1,   /* the attribute as stored */
    P_SEQ = 2,    /* tuple(value) */
    P_MAP = 3,    /* (*value, *value.values()) */
    P_MODEL = 4,  /* (*value.__dict__, *value.__dict__.values()) */
    P_FREEZE = 5, /* fn(value) */
};

typedef struct Model Model;

typedef struct Value {
    int kind;
    PyObject *tag; /* borrowed: the plan holds every object these structs point to */
    PyObject *fn;
    PyObject *utc;
    struct Value *element;
    Model *model;
} Value;

typedef struct {
    PyObject *descr; /* a data descriptor whose __set__ is called, or NULL */
    PyObject *name;  /* else object.__setattr__(obj, name, value) */
} Setter;

typedef struct {
    PyObject *name;
    PyObject *wire;
    Value value;
    int part;
    PyObject *freeze;
    PyObject *make_default; /* a field that may be absent: what makes its default */
} Field;

struct Model {
    PyObject *cls;
    PyObject *new_;
    PyObject *keys; /* a dict to copy for __dict__ (shared keys), or NULL */
    PyObject *names; /* frozenset of the field names */
    int lazy;        /* fields set: the frozenset itself (Model's property copies it) */
    Py_ssize_t n;
    Field *fields;
    Setter set_dict, set_fields, set_extra, set_private;
};

typedef struct {
    PyObject_HEAD
    PyObject *plan;
    Model top;
    Setter set_state;
    int private_kind; /* 0: None, 1: a copy of `private`, 2: private() */
    PyObject *private_;
    PyObject *attribute; /* the discriminator's attribute, or NULL */
    PyObject *entity_wire;
    PyObject *careful;
    int any_optional;
    void **blocks; /* every struct array allocated for this plan */
    Py_ssize_t n_blocks;
    PyObject ***keys; /* every place a key is looked up with: each holds a strong reference */
    Py_ssize_t n_keys;
} Decoder;

static PyObject *str_tzinfo, *str_replace, *str_dict, *tzinfo_kwnames;

/* ------------------------------------------------------------------ reading the plan */

static void *
block(Decoder *self, size_t size)
{
    void **grown = PyMem_Realloc(self->blocks, sizeof(void *) * (self->n_blocks + 1));
    if (grown == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    self->blocks = grown;
    void *made = PyMem_Calloc(1, size ? size : 1);
    if (made == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    self->blocks[self->n_blocks++] = made;
    return made;
}

static int read_model(Decoder *self, PyObject *spec, Model *model, int top);
static int read_value_owned(Decoder *self, PyObject *spec, Value *value);

/* `*site` (a str of the plan) becomes a key this decoder owns and may swap for an equal one. */
static int
own_key(Decoder *self, PyObject **site)
{
    if (!PyUnicode_CheckExact(*site)) {
        PyErr_SetString(PyExc_TypeError, "attribute names and tags are str");
        return -1;
    }
    PyObject ***grown = PyMem_Realloc(self->keys, sizeof(PyObject **) * (self->n_keys + 1));
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->keys = grown;
    Py_INCREF(*site);
    self->keys[self->n_keys++] = site;
    return 0;
}

static PyObject *
none_to_null(PyObject *o)
{
    return o == Py_None ? NULL : o;
}

static int
read_value(Decoder *self, PyObject *spec, Value *value)
{
    if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) < 1) {
        PyErr_SetString(PyExc_TypeError, "a value spec is a tuple (kind, ...)");
        return -1;
    }
    int kind = (int)PyLong_AsLong(PyTuple_GET_ITEM(spec, 0));
    if (kind == -1 && PyErr_Occurred())
        return -1;
    value->kind = kind;
    Py_ssize_t size = PyTuple_GET_SIZE(spec);
    switch (kind) {
    case K_TAKE:
    case K_INT:
    case K_FLOAT:
    case K_SET:
    case K_FROZENSET:
        if (size != 2)
            break;
        value->tag = PyTuple_GET_ITEM(spec, 1);
        return 0;
    case K_CALL_TAG:
        if (size != 3)
            break;
        value->tag = PyTuple_GET_ITEM(spec, 1);
        value->fn = PyTuple_GET_ITEM(spec, 2);
        return 0;
    case K_DATETIME:
        if (size != 4)
            break;
        value->tag = PyTuple_GET_ITEM(spec, 1);
        value->fn = PyTuple_GET_ITEM(spec, 2);
        value->utc = PyTuple_GET_ITEM(spec, 3);
        return 0;
    case K_LIST:
    case K_DICT:
        if (size != 3)
            break;
        value->tag = PyTuple_GET_ITEM(spec, 1);
        value->element = block(self, sizeof(Value));
        if (value->element == NULL)
            return -1;
        return read_value_owned(self, PyTuple_GET_ITEM(spec, 2), value->element);
    case K_MODEL:
        if (size != 3)
            break;
        value->tag = PyTuple_GET_ITEM(spec, 1);
        value->model = block(self, sizeof(Model));
        if (value->model == NULL)
            return -1;
        return read_model(self, PyTuple_GET_ITEM(spec, 2), value->model, 0);
    case K_DECODE:
        if (size != 2)
            break;
        value->fn = PyTuple_GET_ITEM(spec, 1);
        return 0;
    default:
        break;
    }
    PyErr_Format(PyExc_ValueError, "not a value spec of this version: kind %d, %zd members",
                 kind, size);
    return -1;
}

static int
read_value_owned(Decoder *self, PyObject *spec, Value *value)
{
    if (read_value(self, spec, value) < 0)
        return -1;
    return value->tag == NULL ? 0 : own_key(self, &value->tag);
}

static int
read_setter(PyObject *spec, Setter *setter)
{
    PyObject *descr, *name;
    if (!PyArg_ParseTuple(spec, "OU", &descr, &name))
        return -1;
    setter->descr = none_to_null(descr);
    setter->name = name;
    if (setter->descr != NULL && Py_TYPE(setter->descr)->tp_descr_set == NULL) {
        PyErr_SetString(PyExc_TypeError, "a setter's descriptor must define __set__");
        return -1;
    }
    return 0;
}

/* (cls, new, keys|None, fields, names, lazy, (dict, fields set, extra, private) setters)
 * where a field is (name, wire, value spec, part, freeze|None, default|None) */
static int
read_model(Decoder *self, PyObject *spec, Model *model, int top)
{
    PyObject *keys, *fields, *setters;
    if (!PyArg_ParseTuple(spec, "OOOO!O!pO!", &model->cls, &model->new_, &keys, &PyTuple_Type,
                          &fields, &PyFrozenSet_Type, &model->names, &model->lazy,
                          &PyTuple_Type, &setters))
        return -1;
    if (keys != Py_None && !PyDict_CheckExact(keys)) {
        PyErr_SetString(PyExc_TypeError, "keys must be a dict or None");
        return -1;
    }
    model->keys = none_to_null(keys);
    if (PyTuple_GET_SIZE(setters) != 4) {
        PyErr_SetString(PyExc_TypeError, "a model has four setters");
        return -1;
    }
    if (read_setter(PyTuple_GET_ITEM(setters, 0), &model->set_dict) < 0 ||
        read_setter(PyTuple_GET_ITEM(setters, 1), &model->set_fields) < 0 ||
        read_setter(PyTuple_GET_ITEM(setters, 2), &model->set_extra) < 0 ||
        read_setter(PyTuple_GET_ITEM(setters, 3), &model->set_private) < 0)
        return -1;
    model->n = PyTuple_GET_SIZE(fields);
    model->fields = block(self, sizeof(Field) * model->n);
    if (model->fields == NULL)
        return -1;
    for (Py_ssize_t i = 0; i < model->n; i++) {
        Field *field = &model->fields[i];
        PyObject *value, *freeze, *make_default;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(fields, i), "UUOiOO", &field->name, &field->wire,
                              &value, &field->part, &freeze, &make_default))
            return -1;
        if (field->part < P_ATOM || field->part > P_FREEZE) {
            PyErr_SetString(PyExc_ValueError, "not a part kind of this version");
            return -1;
        }
        field->freeze = none_to_null(freeze);
        field->make_default = none_to_null(make_default);
        if (field->make_default != NULL) {
            if (!top) {
                PyErr_SetString(PyExc_ValueError, "a nested model's members are all present");
                return -1;
            }
            self->any_optional = 1;
        }
        if (field->part == P_FREEZE && field->freeze == NULL) {
            PyErr_SetString(PyExc_ValueError, "a frozen part needs its freeze");
            return -1;
        }
        if (read_value_owned(self, value, &field->value) < 0 || own_key(self, &field->wire) < 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ decoding */

/* Functions below return a new reference, or NULL: with an exception set (a conversion raised)
 * or without one (the item is not of the expected shape). Either way the item goes to
 * `careful`. */

static inline PyObject *
member(PyObject *av, PyObject *key)
{
    if (!PyDict_CheckExact(av))
        return NULL;
    return PyDict_GetItemWithError(av, key); /* borrowed */
}

static inline int
put(const Setter *setter, PyObject *obj, PyObject *value)
{
    if (setter->descr != NULL)
        return Py_TYPE(setter->descr)->tp_descr_set(setter->descr, obj, value);
    return PyObject_GenericSetAttr(obj, setter->name, value);
}

static PyObject *build_model(const Model *model, PyObject *m, PyObject **dict_out);

static PyObject *convert(const Value *value, PyObject *x, PyObject **dict_out);

/* What `value` makes of the attribute `av`. Objects of the item are held while Python code
 * (a codec, a conversion) may run, so that code changing the item cannot free them. */
static PyObject *
decode_value(const Value *value, PyObject *av, PyObject **dict_out)
{
    if (value->kind == K_DECODE)
        return PyObject_CallOneArg(value->fn, av);
    PyObject *x = member(av, value->tag);
    if (x == NULL)
        return NULL;
    Py_INCREF(x);
    PyObject *out = convert(value, x, dict_out);
    Py_DECREF(x);
    return out;
}

static PyObject *
convert(const Value *value, PyObject *x, PyObject **dict_out)
{
    PyObject *out;
    switch (value->kind) {
    case K_TAKE:
        return Py_NewRef(x);
    case K_INT:
        return PyUnicode_CheckExact(x) ? PyLong_FromUnicodeObject(x, 10) : NULL;
    case K_FLOAT:
        return PyUnicode_CheckExact(x) ? PyFloat_FromString(x) : NULL;
    case K_CALL_TAG:
        return PyObject_CallOneArg(value->fn, x);
    case K_DATETIME: {
        out = PyObject_CallOneArg(value->fn, x);
        if (out == NULL)
            return NULL;
        if (PyDateTime_CheckExact(out) && PyDateTime_DATE_GET_TZINFO(out) != Py_None)
            return out;
        PyObject *tz = PyObject_GetAttr(out, str_tzinfo);
        if (tz == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        int naive = tz == Py_None;
        Py_DECREF(tz);
        if (!naive)
            return out;
        PyObject *args[2] = {out, value->utc};
        PyObject *aware = PyObject_VectorcallMethod(
            str_replace, args, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, tzinfo_kwnames);
        Py_DECREF(out);
        return aware;
    }
    case K_SET:
        return PySet_New(x);
    case K_FROZENSET:
        return PyFrozenSet_New(x);
    case K_LIST: {
        if (!PyList_CheckExact(x))
            return NULL;
        Py_ssize_t n = PyList_GET_SIZE(x);
        out = PyList_New(n);
        if (out == NULL)
            return NULL;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (i >= PyList_GET_SIZE(x)) { /* a codec shortened the list */
                Py_DECREF(out);
                return NULL;
            }
            PyObject *av = Py_NewRef(PyList_GET_ITEM(x, i));
            PyObject *item = decode_value(value->element, av, NULL);
            Py_DECREF(av);
            if (item == NULL) {
                Py_DECREF(out);
                return NULL;
            }
            PyList_SET_ITEM(out, i, item);
        }
        return out;
    }
    case K_DICT: {
        if (!PyDict_CheckExact(x))
            return NULL;
        out = PyDict_New();
        if (out == NULL)
            return NULL;
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (PyDict_Next(x, &pos, &k, &v)) {
            Py_INCREF(k);
            Py_INCREF(v);
            PyObject *item = decode_value(value->element, v, NULL);
            int failed = item == NULL || PyDict_SetItem(out, k, item) < 0;
            Py_DECREF(k);
            Py_DECREF(v);
            Py_XDECREF(item);
            if (failed) {
                Py_DECREF(out);
                return NULL;
            }
        }
        return out;
    }
    case K_MODEL:
        return build_model(value->model, x, dict_out);
    default:
        PyErr_SetString(PyExc_SystemError, "adyn._cdecode: unknown value kind");
        return NULL;
    }
}

/* The object of a nested model whose members are all in `m` (a dict), as `constructor` makes
 * it: __dict__ in field order, every field set, no extra, no private. */
static PyObject *
build_model(const Model *model, PyObject *m, PyObject **dict_out)
{
    if (!PyDict_CheckExact(m))
        return NULL;
    PyObject *values = model->keys != NULL ? PyDict_Copy(model->keys) : PyDict_New();
    if (values == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < model->n; i++) {
        const Field *field = &model->fields[i];
        PyObject *av = PyDict_GetItemWithError(m, field->wire);
        if (av == NULL)
            goto fail;
        Py_INCREF(av);
        PyObject *v = decode_value(&field->value, av, NULL);
        Py_DECREF(av);
        if (v == NULL || PyDict_SetItem(values, field->name, v) < 0) {
            Py_XDECREF(v);
            goto fail;
        }
        Py_DECREF(v);
    }
    PyObject *obj = PyObject_CallOneArg(model->new_, model->cls);
    if (obj == NULL)
        goto fail;
    PyObject *fields_set = model->lazy ? Py_NewRef(model->names) : PySet_New(model->names);
    if (fields_set == NULL || put(&model->set_dict, obj, values) < 0 ||
        put(&model->set_fields, obj, fields_set) < 0 || put(&model->set_extra, obj, Py_None) < 0 ||
        put(&model->set_private, obj, Py_None) < 0) {
        Py_XDECREF(fields_set);
        Py_DECREF(obj);
        goto fail;
    }
    Py_DECREF(fields_set);
    if (dict_out != NULL)
        *dict_out = values; /* borrowed: the object holds it */
    Py_DECREF(values);
    return obj;
fail:
    Py_DECREF(values);
    return NULL;
}

/* (*d, *d.values()) */
static PyObject *
flat_items(PyObject *d)
{
    if (!PyDict_CheckExact(d))
        return NULL;
    Py_ssize_t n = PyDict_GET_SIZE(d), pos = 0, i = 0;
    PyObject *out = PyTuple_New(2 * n), *k, *v;
    if (out == NULL)
        return NULL;
    while (PyDict_Next(d, &pos, &k, &v) && i < n) {
        PyTuple_SET_ITEM(out, i, Py_NewRef(k));
        PyTuple_SET_ITEM(out, n + i, Py_NewRef(v));
        i++;
    }
    if (i != n) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

static PyObject *
part_of(const Field *field, PyObject *value, PyObject *av, PyObject *dict)
{
    switch (field->part) {
    case P_ATOM:
        return Py_NewRef(value);
    case P_WIRE:
        return Py_NewRef(av);
    case P_SEQ:
        return PySequence_Tuple(value);
    case P_MAP:
        return flat_items(value);
    case P_MODEL:
        if (dict != NULL)
            return flat_items(dict);
        {
            PyObject *d = PyObject_GetAttr(value, str_dict);
            if (d == NULL)
                return NULL;
            PyObject *out = flat_items(d);
            Py_DECREF(d);
            return out;
        }
    case P_FREEZE:
        return PyObject_CallOneArg(field->freeze, value);
    default:
        PyErr_SetString(PyExc_SystemError, "adyn._cdecode: unknown part kind");
        return NULL;
    }
}

enum { FIRST = 2 }; /* state[0]: fields read (None: all), state[1]: tagged, then the parts */

static PyObject *
decode_fast(Decoder *self, PyObject *item, unsigned char *absent)
{
    const Model *model = &self->top;
    if (!PyDict_CheckExact(item))
        return NULL;
    Py_ssize_t n = model->n;
    PyObject *state = PyTuple_New(FIRST + n);
    PyObject *values = NULL, *obj = NULL, *read = NULL, *private_ = NULL;
    if (state == NULL)
        return NULL;
    PyTuple_SET_ITEM(state, 0, Py_NewRef(Py_None));
    if (self->attribute != NULL) {
        PyObject *found = PyDict_GetItemWithError(item, self->attribute);
        if (found == NULL && PyErr_Occurred())
            goto fail;
        PyObject *tagged =
            PyObject_RichCompare(found == NULL ? Py_None : found, self->entity_wire, Py_EQ);
        if (tagged == NULL)
            goto fail;
        PyTuple_SET_ITEM(state, 1, tagged);
    }
    else {
        PyTuple_SET_ITEM(state, 1, Py_NewRef(Py_False));
    }
    values = model->keys != NULL ? PyDict_Copy(model->keys) : PyDict_New();
    if (values == NULL)
        goto fail;
    int absent_any = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const Field *field = &model->fields[i];
        PyObject *av = PyDict_GetItemWithError(item, field->wire);
        PyObject *value, *part;
        if (av == NULL && PyErr_Occurred())
            goto fail;
        absent[i] = av == NULL || av == Py_None;
        if (absent[i]) {
            if (field->make_default == NULL)
                goto fail;
            absent_any = 1;
            value = Py_NewRef(Py_None);
            part = Py_NewRef(Py_None);
        }
        else {
            PyObject *dict = NULL;
            Py_INCREF(av);
            value = decode_value(&field->value, av, &dict);
            part = value == NULL ? NULL : part_of(field, value, av, dict);
            Py_DECREF(av);
            if (part == NULL) {
                Py_XDECREF(value);
                goto fail;
            }
        }
        PyTuple_SET_ITEM(state, FIRST + i, part);
        int failed = PyDict_SetItem(values, field->name, value) < 0;
        Py_DECREF(value);
        if (failed)
            goto fail;
    }
    if (absent_any) { /* what `careful` does for the absent ones, in field order */
        read = PySet_New(model->names);
        if (read == NULL)
            goto fail;
        for (Py_ssize_t i = 0; i < n; i++) {
            const Field *field = &model->fields[i];
            if (!absent[i])
                continue;
            if (PyDict_DelItem(values, field->name) < 0)
                goto fail;
            PyObject *made = PyObject_CallNoArgs(field->make_default);
            int failed = made == NULL || PyDict_SetItem(values, field->name, made) < 0 ||
                         PySet_Discard(read, field->name) < 0;
            Py_XDECREF(made);
            if (failed)
                goto fail;
        }
    }
    if (self->private_kind == 1)
        private_ = PyDict_Copy(self->private_);
    else if (self->private_kind == 2)
        private_ = PyObject_CallNoArgs(self->private_);
    else
        private_ = Py_NewRef(Py_None);
    if (private_ == NULL)
        goto fail;
    obj = PyObject_CallOneArg(model->new_, model->cls);
    if (obj == NULL)
        goto fail;
    if (read == NULL)
        read = model->lazy ? Py_NewRef(model->names) : PySet_New(model->names);
    if (read == NULL || put(&model->set_dict, obj, values) < 0 ||
        put(&model->set_fields, obj, read) < 0 || put(&model->set_extra, obj, Py_None) < 0 ||
        put(&model->set_private, obj, private_) < 0 || put(&self->set_state, obj, state) < 0)
        goto fail;
    Py_DECREF(state);
    Py_DECREF(values);
    Py_DECREF(read);
    Py_DECREF(private_);
    return obj;
fail:
    Py_DECREF(state);
    Py_XDECREF(values);
    Py_XDECREF(read);
    Py_XDECREF(private_);
    Py_XDECREF(obj);
    return NULL;
}

/* ------------------------------------------------------------------ adopting the wire's keys
 *
 * orjson gives every dict key of a parse (up to 64 bytes) from a cache: the same str object
 * for "pk" in every item, and in the next response too. A lookup with that very object is
 * answered on identity; one with an equal str of the plan compares the characters (a quarter
 * of the decode time, measured). So the first item of each page lends its key objects to the
 * plan: an equal exact str in place of another is the same lookup, only quicker. */

static void
adopt(PyObject **site, PyObject *d)
{
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    Py_hash_t hash = PyObject_Hash(*site); /* a str: cached, cannot fail */
    while (PyDict_Next(d, &pos, &k, &v)) {
        if (k == *site)
            return;
        if (PyUnicode_CheckExact(k) && PyObject_Hash(k) == hash &&
            PyUnicode_Compare(k, *site) == 0) {
            Py_INCREF(k);
            Py_SETREF(*site, k);
            return;
        }
    }
}

static void learn_model(Model *model, PyObject *d);

static void
learn_value(Value *value, PyObject *av)
{
    if (value->kind == K_DECODE || !PyDict_CheckExact(av))
        return;
    adopt(&value->tag, av);
    PyObject *x = PyDict_GetItemWithError(av, value->tag);
    if (x == NULL)
        return;
    if (value->kind == K_LIST && PyList_CheckExact(x) && PyList_GET_SIZE(x) > 0)
        learn_value(value->element, PyList_GET_ITEM(x, 0));
    else if (value->kind == K_DICT && PyDict_CheckExact(x)) {
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        if (PyDict_Next(x, &pos, &k, &v))
            learn_value(value->element, v);
    }
    else if (value->kind == K_MODEL && PyDict_CheckExact(x))
        learn_model(value->model, x);
}

static void
learn_model(Model *model, PyObject *d)
{
    for (Py_ssize_t i = 0; i < model->n; i++) {
        Field *field = &model->fields[i];
        adopt(&field->wire, d);
        PyObject *av = PyDict_GetItemWithError(d, field->wire);
        if (av != NULL)
            learn_value(&field->value, av);
    }
    PyErr_Clear(); /* (str keys: lookups cannot raise) */
}

static void
learn(Decoder *self, PyObject *item)
{
    if (PyDict_CheckExact(item))
        learn_model(&self->top, item);
}

static PyObject *
decode_one(Decoder *self, PyObject *item)
{
    unsigned char small[64]; /* which fields are absent (a nested call has its own) */
    unsigned char *absent = self->top.n <= 64 ? small : PyMem_Malloc(self->top.n);
    if (absent == NULL)
        return PyErr_NoMemory();
    Py_INCREF(item);
    PyObject *obj = decode_fast(self, item, absent);
    if (absent != small)
        PyMem_Free(absent);
    if (obj != NULL) {
        Py_DECREF(item);
        return obj;
    }
    if (PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_Exception)) {
            Py_DECREF(item);
            return NULL;
        }
        PyErr_Clear();
    }
    obj = PyObject_CallOneArg(self->careful, item);
    Py_DECREF(item);
    return obj;
}

/* ------------------------------------------------------------------ the type */

static PyObject *
Decoder_call(Decoder *self, PyObject *args, PyObject *kwargs)
{
    PyObject *item;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs)) {
        PyErr_SetString(PyExc_TypeError, "a decoder takes one item");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O", &item))
        return NULL;
    return decode_one(self, item);
}

PyDoc_STRVAR(page_doc,
             "page(items, consume=False) -> the objects of a list of items, in order.\n\n"
             "With consume, each item's place in the list becomes None once its object is\n"
             "built, so that a page nobody else holds is freed while it is decoded.");

static PyObject *
Decoder_page(Decoder *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "page() takes a list of items and consume");
        return NULL;
    }
    PyObject *items = args[0];
    int consume = nargs == 2 ? PyObject_IsTrue(args[1]) : 0;
    if (consume < 0)
        return NULL;
    if (!PyList_Check(items)) {
        PyErr_SetString(PyExc_TypeError, "page() takes a list of items");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(items);
    PyObject *out = PyList_New(n);
    if (out == NULL)
        return NULL;
    if (n > 0)
        learn(self, PyList_GET_ITEM(items, 0));
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i >= PyList_GET_SIZE(items)) { /* a careful call shortened the list */
            Py_DECREF(out);
            PyErr_SetString(PyExc_RuntimeError, "the page changed while it was decoded");
            return NULL;
        }
        PyObject *obj = decode_one(self, PyList_GET_ITEM(items, i));
        if (obj == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, obj);
        if (consume && i < PyList_GET_SIZE(items)) {
            PyObject *done = PyList_GET_ITEM(items, i);
            PyList_SET_ITEM(items, i, Py_NewRef(Py_None));
            Py_DECREF(done);
        }
    }
    return out;
}

/* (model spec, state setter, private kind, private, attribute|None, entity wire, careful,
 * [what must live as long as the decoder]) */
static PyObject *
Decoder_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *plan;
    if (!PyArg_ParseTuple(args, "O!:Decoder", &PyTuple_Type, &plan))
        return NULL;
    Decoder *self = (Decoder *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->plan = Py_NewRef(plan);
    PyObject *model, *state_setter, *attribute, *keep = NULL; /* keep: what must live with it */
    if (!PyArg_ParseTuple(plan, "OOiOOOO|O:plan", &model, &state_setter, &self->private_kind,
                          &self->private_, &attribute, &self->entity_wire, &self->careful, &keep))
        goto fail;
    self->attribute = none_to_null(attribute);
    if (self->private_kind < 0 || self->private_kind > 2 ||
        (self->private_kind == 1 && !PyDict_CheckExact(self->private_))) {
        PyErr_SetString(PyExc_ValueError, "private: 0 (None), 1 (a dict to copy), 2 (a factory)");
        goto fail;
    }
    if (read_model(self, model, &self->top, 1) < 0 || read_setter(state_setter, &self->set_state) < 0)
        goto fail;
    return (PyObject *)self;
fail:
    Py_DECREF(self);
    return NULL;
}

static int
Decoder_traverse(Decoder *self, visitproc visit, void *arg)
{
    Py_VISIT(self->plan);
    return 0;
}

static int
Decoder_clear(Decoder *self)
{
    Py_CLEAR(self->plan);
    return 0;
}

static void
Decoder_dealloc(Decoder *self)
{
    PyObject_GC_UnTrack(self);
    Decoder_clear(self);
    for (Py_ssize_t i = 0; i < self->n_keys; i++)
        Py_CLEAR(*self->keys[i]);
    PyMem_Free(self->keys);
    for (Py_ssize_t i = 0; i < self->n_blocks; i++)
        PyMem_Free(self->blocks[i]);
    PyMem_Free(self->blocks);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Decoder_methods[] = {
    {"page", (PyCFunction)(void (*)(void))Decoder_page, METH_FASTCALL, page_doc},
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(Decoder_doc, "Decoder(plan): a model's whole-item decoder (see adyn._decoder).");

static PyTypeObject DecoderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "adyn._cdecode.Decoder",
    .tp_basicsize = sizeof(Decoder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = Decoder_doc,
    .tp_new = Decoder_new,
    .tp_call = (ternaryfunc)Decoder_call,
    .tp_dealloc = (destructor)Decoder_dealloc,
    .tp_traverse = (traverseproc)Decoder_traverse,
    .tp_clear = (inquiry)Decoder_clear,
    .tp_methods = Decoder_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "adyn._cdecode",
    .m_doc = "A model's whole-item decoder, compiled (optional; see adyn._decoder).",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__cdecode(void)
{
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL)
        return NULL;
    if ((str_tzinfo = PyUnicode_InternFromString("tzinfo")) == NULL ||
        (tzinfo_kwnames = PyTuple_Pack(1, str_tzinfo)) == NULL ||
        (str_replace = PyUnicode_InternFromString("replace")) == NULL ||
        (str_dict = PyUnicode_InternFromString("__dict__")) == NULL)
        return NULL;
    if (PyType_Ready(&DecoderType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Decoder", (PyObject *)&DecoderType) < 0 ||
        PyModule_AddIntConstant(m, "VERSION", 1) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
