/**
 * Python's live-buffered mode (`runtimes.python.buffering: 'live'`): instead of `-u`, which makes
 * every `print()` two write system calls, stdout and stderr stay block-buffered and a thread
 * flushes them every `liveFlushMs` (20 ms by default). A chatty script prints several times faster;
 * a line reaches viewers at most that much later.
 *
 * What keeps "nothing lost" in this mode: the launcher flushes before the traceback of an uncaught
 * exception (so the log keeps the order print → traceback), on SIGTERM/SIGHUP (cancel, timeout)
 * before dying of the same signal, on SIGINT, and at a normal exit. What it cannot cover: a process
 * that ends without running Python's shutdown — `os._exit()`, SIGKILL, a crash of the interpreter —
 * loses what was printed in the last interval at most.
 */
import type { RuntimeConfig } from '../types.js';

export const DEFAULT_LIVE_FLUSH_MS = 20;

/**
 * The launcher, run with `python -c`. argv: the flush interval in ms, the script, its arguments.
 * It makes the script look as if Python had started it: `sys.argv`, `sys.path[0]`, `__main__`,
 * and a traceback without the launcher's frames.
 */
const LAUNCHER = String.raw`
import atexit, os, runpy, signal, sys, threading
def _scriptrunner_live():
    interval = int(sys.argv[1]) / 1000.0
    script = sys.argv[2]
    sys.argv = sys.argv[2:]
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    streams = [s for s in (sys.stdout, sys.stderr) if s is not None]
    for s in streams:
        try:
            s.reconfigure(line_buffering=False, write_through=False)
        except Exception:
            pass
    def flush():
        for s in streams:
            try:
                s.flush()
            except Exception:
                pass
    stop = threading.Event()
    def flusher():
        while not stop.wait(interval):
            flush()
    thread = threading.Thread(target=flusher, name="scriptrunner-flush", daemon=True)
    thread.start()
    # Joined before Python's final flush: a daemon thread inside a blocking write at interpreter
    # shutdown is a fatal error ("could not acquire lock ... at interpreter shutdown"). Registered
    # first, so it runs after the script's own atexit handlers.
    def stop_flusher():
        stop.set()
        thread.join()
    atexit.register(stop_flusher)
    def die_flushed(signum, frame=None):
        flush()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, die_flushed)
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit:
        flush()
        raise
    except BaseException as error:
        flush()
        tb = error.__traceback__
        launcher = ("<string>", "<frozen runpy>", runpy.__file__)
        while tb is not None and tb.tb_frame.f_code.co_filename in launcher:
            tb = tb.tb_next
        sys.excepthook(type(error), error.with_traceback(tb), tb)
        flush()
        if isinstance(error, KeyboardInterrupt):
            die_flushed(signal.SIGINT)
        sys.exit(1)
    flush()
_scriptrunner_live()
`.trim();

/**
 * The argv and environment of a run: `runtime.args`, the script and its arguments — or, in live
 * mode, the same through the launcher, without `-u` and `PYTHONUNBUFFERED`.
 */
export function scriptLaunch(runtime: RuntimeConfig, scriptPath: string, args: readonly string[]): { args: string[]; env: Record<string, string> } {
  if (runtime.buffering !== 'live') return { args: [...runtime.args, scriptPath, ...args], env: runtime.env };
  const { PYTHONUNBUFFERED: _unbuffered, ...env } = runtime.env;
  const flushMs = runtime.liveFlushMs ?? DEFAULT_LIVE_FLUSH_MS;
  return {
    args: [...runtime.args.filter((a) => a !== '-u'), '-c', LAUNCHER, String(flushMs), scriptPath, ...args],
    env,
  };
}
