/**
 * The program each Python context runs (`python3 -u -c DRIVER`): a loop that reads a cell from fd
 * 3, runs it in the context's `__main__` namespace and writes the outcome to fd 4, each message a
 * 4-byte big-endian length and UTF-8 JSON. After a cell it flushes stdout and stderr and writes the
 * cell's marker to both, so sandboxd knows where that cell's output ends even when a subprocess
 * wrote to the descriptors directly. SIGINT is ignored between cells and is KeyboardInterrupt
 * during one, so an interrupt sent as a cell finishes cannot hit the loop itself.
 */
export const PYTHON_DRIVER = String.raw`
import ast, builtins, json, linecache, os, signal, struct, sys, traceback, types

IN_FD, OUT_FD = 3, 4
signal.signal(signal.SIGINT, signal.SIG_IGN)
driver_globals = globals()
main = types.ModuleType('__main__')
main.__builtins__ = builtins
sys.modules['__main__'] = main
cells = 0

def read_exact(size):
    data = b''
    while len(data) < size:
        chunk = os.read(IN_FD, size - len(data))
        if not chunk:
            os._exit(0)
        data += chunk
    return data

def write_frame(message):
    data = json.dumps(message, ensure_ascii=False).encode('utf-8', 'replace')
    data = struct.pack('>I', len(data)) + data
    while data:
        data = data[os.write(OUT_FD, data):]

def clip(text, limit):
    return text if len(text) <= limit else text[:limit] + '... [cut]'

def run_cell(code):
    global cells
    cells += 1
    name = '<cell-%d>' % cells
    linecache.cache[name] = (len(code), None, code.splitlines(True), name)
    tree = ast.parse(code, name, 'exec')
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    exec(compile(tree, name, 'exec'), main.__dict__)
    if last is None:
        return None
    value = eval(compile(last, name, 'eval'), main.__dict__)
    if value is None:
        return None
    main.__dict__['_'] = value
    return repr(value)

def describe(exc, limit):
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_globals is driver_globals:
        tb = tb.tb_next
    try:
        text = ''.join(traceback.format_exception(type(exc), exc, tb))
        message = str(exc)
    except BaseException:
        text, message = type(exc).__name__ + '\n', ''
    return {'name': type(exc).__name__, 'message': clip(message, limit), 'traceback': clip(text, limit)}

def flush():
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except BaseException:
            pass

def mark(fd, marker):
    try:
        os.write(fd, marker)
    except OSError:
        pass

while True:
    (size,) = struct.unpack('>I', read_exact(4))
    request = json.loads(read_exact(size))
    limit = request['maxChars']
    outcome = {'value': None, 'error': None}
    try:
        try:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            value = run_cell(request['code'])
            if value is not None:
                outcome['value'] = clip(value, limit)
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    except BaseException as exc:
        outcome['error'] = describe(exc, limit)
    flush()
    marker = request['marker'].encode()
    mark(1, marker)
    mark(2, marker)
    write_frame(outcome)
`;
