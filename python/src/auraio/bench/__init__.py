# SPDX-License-Identifier: Apache-2.0
"""Benchmark scripting: fio jobs run in-process by bffio's workload engine (C), results as objects.

    from auraio import bench
    r = bench.run(filename="/data/f", size="1g", rw="randread", bs="4k", direct=1,
                  runtime="10s", time_based=True)           # no iodepth: auraio self-tunes
    print(r.iops, r.p99_us, r.controller.final_depth)
    for d in (1, 4, 16, 64):
        print(d, bench.run(r.job.with_options(iodepth=d)).iops)

Options are fio's names and values (doc/bffio.md lists what bffio supports); True stands for a
bare flag (time_based=True). A Job can also come from a fio job file (Job.from_file) or a dict.
The I/O loop is C (the same code as the bffio command), so Python never caps the IOPS and the
numbers agree with `bffio` on the same job. Results: summary numbers, per-interval series (time,
IOPS, P50, P99, depth, controller phase), the controller's record, to_dict(), fio's JSON
(to_fio_json()), a pandas DataFrame (to_dataframe(), when pandas is installed), and figures in
auraio.bench.plot (matplotlib).
"""
import json as _json
import os
import sys
import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from .._auraio import ffi, lib

__all__ = ["Job", "Result", "JobResult", "DirResult", "Interval", "ControllerRecord", "BenchError", "run", "sweep"]

_PHASES: Dict[int, str] = {}


class BenchError(RuntimeError):
    """A job could not be parsed (status 2), could not start (3), or a job failed (1)."""

    def __init__(self, message: str, status: int, result: Optional["Result"] = None) -> None:
        super().__init__(message)
        self.status = status
        self.result = result


def _phase_name(p: int) -> str:
    name = _PHASES.get(p)
    if name is None:
        name = _PHASES[p] = ffi.string(lib.auraio_phase_name(p)).decode()
    return name


def _value(v: Any) -> Optional[str]:
    if v is True:
        return None  # a bare flag
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v)
    return str(v)


class Job:
    """A fio job description: a name and fio options (keyword arguments, fio's names and values),
    or the text of a fio job file. Jobs are immutable; with_options() returns a changed copy."""

    def __init__(self, name: str = "job", **options: Any) -> None:
        if not name or any(c in name for c in "[]\n"):
            raise ValueError("a job name must be non-empty without '[', ']' or newlines")
        for k, v in options.items():
            if v is None or v is False:
                continue
            if "\n" in str(v):
                raise ValueError(f"option {k}: newline in value")
        self.name = name
        self.options = {k: v for k, v in options.items() if v is not None and v is not False}
        self._text: Optional[str] = None
        self._source = f"<auraio.bench job {name}>"

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Job":
        """{'name': ..., option: value, ...} (name optional)."""
        d = dict(d)
        return cls(d.pop("name", "job"), **d)

    @classmethod
    def from_text(cls, text: str, source: str = "<job text>") -> "Job":
        """A fio job file's text ([global] and job sections)."""
        j = cls("file")
        j._text = text
        j._source = source
        return j

    @classmethod
    def from_file(cls, path: Union[str, "os.PathLike[str]"]) -> "Job":
        """A fio job file (includes are resolved relative to it)."""
        path = os.fspath(path)
        with open(path, encoding="utf-8") as f:
            return cls.from_text(f.read(), path)

    def with_options(self, **options: Any) -> "Job":
        """A copy with options changed (None or False removes one). Not for job-file jobs."""
        if self._text is not None:
            raise ValueError("with_options() needs a job built from options, not a job file")
        merged = dict(self.options)
        for k, v in options.items():
            if v is None or v is False:
                merged.pop(k, None)
            else:
                merged[k] = v
        return Job(self.name, **merged)

    @property
    def text(self) -> str:
        """The fio job file this job is."""
        if self._text is not None:
            return self._text
        lines = [f"[{self.name}]"]
        for k, v in self.options.items():
            s = _value(v)
            lines.append(k if s is None else f"{k}={s}")
        return "\n".join(lines) + "\n"

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, **self.options} if self._text is None else {"text": self._text}

    def __repr__(self) -> str:
        if self._text is not None:
            return f"Job.from_text({self._source!r})"
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"Job({self.name!r}, {opts})"


@dataclass(frozen=True)
class Interval:
    """One interval of one job clone (fio's 500 ms, or log_avg_msec). p50/p99 are engine-wide over
    the interval (the library's submit-to-reap latency of reads and writes; None without samples),
    depth the in-flight limit and phase the controller's phase at its end."""

    t_s: float
    iops: float
    read_iops: float
    write_iops: float
    bw_bytes: float
    mean_lat_us: Optional[float]
    p50_us: Optional[float]
    p99_us: Optional[float]
    depth: int
    phase: str


@dataclass(frozen=True)
class DirResult:
    """One direction (read or write) of a job, as fio's JSON has it (latencies in microseconds)."""

    io_bytes: int
    ios: int
    iops: float
    bw_bytes: float
    runtime_ms: int
    lat_mean_us: float
    clat_mean_us: float
    clat_percentiles_us: Dict[float, float]

    def percentile(self, q: float) -> Optional[float]:
        return self.clat_percentiles_us.get(float(q))


@dataclass(frozen=True)
class ControllerRecord:
    """What auraio's depth controller did over a group: mode ('adaptive' or 'fixed'), the depth it
    ended at and when it last changed, its P99, per-ring records and the depth every 100 ms."""

    mode: str
    iodepth: Optional[int]
    final_depth: int
    converge_s: float
    target_p99_ms: float
    p99_ms: float
    rings: List[Dict[str, Any]]
    depth_trace: List[int]
    trace_interval_s: float = 0.1


@dataclass(frozen=True)
class JobResult:
    name: str
    clone: int
    group: int
    read: DirResult
    write: DirResult
    error: int
    series: List[Interval]
    controller: ControllerRecord

    @property
    def iops(self) -> float:
        return self.read.iops + self.write.iops


def _dir(d: Dict[str, Any]) -> DirResult:
    clat = d.get("clat_ns", {})
    pct = {float(k): v / 1000.0 for k, v in clat.get("percentile", {}).items()}
    return DirResult(int(d.get("io_bytes", 0)), int(d.get("total_ios", 0)), float(d.get("iops", 0.0)),
                     float(d.get("bw_bytes", 0)), int(d.get("runtime", 0)), d.get("lat_ns", {}).get("mean", 0.0) / 1000.0,
                     clat.get("mean", 0.0) / 1000.0, pct)


def _controller(a: Dict[str, Any]) -> ControllerRecord:
    return ControllerRecord(a.get("mode", ""), a.get("iodepth"), int(a.get("final_depth", 0)),
                            float(a.get("converge_s", 0.0)), float(a.get("p99_target_ms", 0.0)),
                            float(a.get("p99_ms", 0.0)), list(a.get("rings", [])), list(a.get("depth_trace_100ms", [])))


def _series(res: Any) -> List[Interval]:
    out = []
    prev_t = 0
    for i in range(res.samples_nr):
        s = res.samples[i]
        dt = (s.t_ms - prev_t) / 1000.0
        prev_t = s.t_ms
        if dt <= 0:
            continue
        ios = s.ios[0] + s.ios[1]
        lat = s.lat_sum_ns[0] + s.lat_sum_ns[1]
        out.append(Interval(s.t_ms / 1000.0, ios / dt, s.ios[0] / dt, s.ios[1] / dt, (s.bytes[0] + s.bytes[1]) / dt,
                            lat / ios / 1000.0 if ios else None, s.p50_ns / 1000.0 if s.p50_ns else None,
                            s.p99_ns / 1000.0 if s.p99_ns else None, s.depth, _phase_name(s.phase)))
    return out


class Result:
    """The outcome of run(): one JobResult per job clone (jobs[]), fio's JSON (json) and text
    report (text). Summary properties add the jobs up (iops, bw_bytes) or take the worst (p99_us)."""

    def __init__(self, job: Job, jobs: List[JobResult], fio_json: Dict[str, Any], text: str, status: int,
                 error: str) -> None:
        self.job = job
        self.jobs = jobs
        self.json = fio_json
        self.text = text
        self.status = status
        self.error = error

    @property
    def iops(self) -> float:
        return sum(j.iops for j in self.jobs)

    @property
    def bw_bytes(self) -> float:
        return sum(j.read.bw_bytes + j.write.bw_bytes for j in self.jobs)

    def _pct(self, q: float) -> Optional[float]:
        vals = [v for j in self.jobs for d in (j.read, j.write) if d.ios for v in [d.percentile(q)] if v is not None]
        return max(vals) if vals else None

    @property
    def p50_us(self) -> Optional[float]:
        return self._pct(50.0)

    @property
    def p99_us(self) -> Optional[float]:
        return self._pct(99.0)

    @property
    def controller(self) -> ControllerRecord:
        """The first job's group's controller record."""
        return self.jobs[0].controller

    @property
    def series(self) -> List[Interval]:
        """The first job clone's per-interval series."""
        return self.jobs[0].series

    def to_dict(self) -> Dict[str, Any]:
        """Plain data (JSON-serialisable): the job, the summary, every job's results and series."""
        return {
            "job": self.job.to_dict(),
            "iops": self.iops, "bw_bytes": self.bw_bytes, "p50_us": self.p50_us, "p99_us": self.p99_us,
            "status": self.status, "error": self.error,
            "jobs": [asdict(j) for j in self.jobs],
        }

    def to_fio_json(self, indent: Optional[int] = 2) -> str:
        """fio 3.33's JSON output with bffio's "auraio" object per job (what bffio prints)."""
        return _json.dumps(self.json, indent=indent)

    def to_dataframe(self) -> Any:
        """The per-interval series of every job clone as a pandas DataFrame (pandas required)."""
        try:
            import pandas as pd
        except ImportError as e:
            raise ImportError("Result.to_dataframe() needs pandas (apt install python3-pandas)") from e
        rows = [dict(job=j.name, clone=j.clone, **asdict(s)) for j in self.jobs for s in j.series]
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        p99 = self.p99_us
        return (f"<auraio.bench.Result iops={self.iops:.0f} p99={'-' if p99 is None else f'{p99:.1f}us'} "
                f"depth={self.controller.final_depth}>")


def _as_job(job: Union[Job, Dict[str, Any], str, "os.PathLike[str]", None], options: Dict[str, Any]) -> Job:
    if job is None:
        return Job(options.pop("name", "job"), **options)
    if isinstance(job, dict):
        job = Job.from_dict(job)
    elif isinstance(job, (str, os.PathLike)):
        job = Job.from_file(job)
    if not isinstance(job, Job):
        raise TypeError("job must be a Job, a dict, a job file path or None")
    return job.with_options(**options) if options else job


def run(job: Union[Job, Dict[str, Any], str, "os.PathLike[str]", None] = None, *, target_p99: Optional[float] = None,
        progress: Optional[bool] = None, check: bool = True, **options: Any) -> Result:
    """Run a job in-process and return its Result.

    job: a Job, a dict of options, a fio job file's path, or None with the options as keywords
    (fio's names: rw="randread", bs="4k", iodepth=32, time_based=True...). target_p99: a P99 target
    in ms for jobs that set none (bffio's --target-p99). progress: bffio's progress line on stdout
    (default: when stdout is a terminal). check: raise BenchError when a job failed (else look at
    result.status / result.error). The GIL is released while the job runs; Ctrl-C stops the job
    early and returns what ran, as bffio does.
    """
    j = _as_job(job, dict(options))
    text = j.text.encode()
    if progress is None:
        progress = sys.stdout.isatty()
    if target_p99 is not None and not (isinstance(target_p99, (int, float)) and target_p99 > 0):
        raise ValueError("target_p99 must be a number of milliseconds > 0")
    stop = ffi.new("int *")
    source = j._source.encode()
    box: List[Any] = []
    if progress:
        sys.stdout.flush()

    def work() -> None:
        box.append(lib.pyb_run(text, len(text), source, float(target_p99 or 0.0), int(bool(progress)), stop))

    # The job runs on a thread of its own so that this one stays interruptible (Ctrl-C sets stop).
    t = threading.Thread(target=work, name="auraio.bench", daemon=True)
    t.start()
    try:
        while t.is_alive():
            t.join(0.1)
    except KeyboardInterrupt:
        stop[0] = 1
        t.join()
    r = box[0] if box else ffi.NULL
    if r == ffi.NULL:
        raise MemoryError("auraio.bench: out of memory")
    try:
        return _collect(j, r, check)
    finally:
        lib.pyb_free(r)


def _collect(job: Job, r: Any, check: bool) -> Result:
    status = r.status
    err = ffi.string(r.err).decode(errors="replace")
    if status in (2, 3):
        raise BenchError(err or "the job could not run", status)
    raw = lib.pyb_report(r, 1, 0)
    if raw == ffi.NULL:
        raise MemoryError("auraio.bench: cannot render the report")
    try:
        fio_json = _json.loads(ffi.string(raw).decode(errors="replace"))
    finally:
        lib.pyb_free_str(raw)
    raw = lib.pyb_report(r, 0, 0)
    text = ffi.string(raw).decode(errors="replace") if raw != ffi.NULL else ""
    lib.pyb_free_str(raw)
    jobs: List[JobResult] = []
    k = 0
    total = sum(r.groups[g].r.nr for g in range(r.ngroups))
    for g in range(r.ngroups):
        gr = r.groups[g].r
        for i in range(gr.nr):
            res = gr.res[i]
            name = ffi.string(res.job.name).decode(errors="replace")
            # bffio's JSON lists clones in the same order (one entry each without group_reporting).
            entries = fio_json.get("jobs", [])
            if len(entries) == total:
                entry = entries[k]
            else:  # group_reporting: one entry per job, not per clone
                entry = next((e for e in entries if e.get("jobname") == name), {})
            k += 1
            jobs.append(JobResult(name, res.clone, g, _dir(entry.get("read", {})), _dir(entry.get("write", {})),
                                  res.error, _series(res), _controller(entry.get("auraio", {}))))
    result = Result(job, jobs, fio_json, text, status, err)
    if status and check:
        raise BenchError(err or "a job failed", status, result)
    return result


def _progress(total: int, label: str) -> Any:
    """tqdm when installed, a plain line when stderr is a terminal, nothing otherwise."""
    if not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm  # type: ignore[import-not-found]
        return tqdm(total=total, desc=label)
    except ImportError:
        return _Line(total, label)


class _Line:
    def __init__(self, total: int, label: str) -> None:
        self.total, self.n, self.label = total, 0, label

    def update(self, n: int = 1) -> None:
        self.n += n
        sys.stderr.write(f"\r{self.label}: {self.n}/{self.total}")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")


def sweep(parameter: str, values: Iterable[Any], job: Union[Job, Dict[str, Any], None] = None,
          **options: Any) -> List[Tuple[Any, Result]]:
    """Run the job once per value of one fio option (sweep("iodepth", [1, 4, 16, 64], job)); None
    as a value removes the option (iodepth=None: self-tuned). Returns [(value, Result)]. Shows
    progress on a terminal (tqdm if installed, else a plain line)."""
    base = _as_job(job, dict(options))
    values = list(values)
    bar = _progress(len(values), f"sweep {parameter}")
    out = []
    try:
        for v in values:
            out.append((v, run(base.with_options(**{parameter: v}), progress=False)))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return out


def parse(job: Union[Job, Dict[str, Any], str, "os.PathLike[str]"]) -> None:
    """Check a job without running it (bffio's --parse-only); raises BenchError on bad input."""
    j = _as_job(job, {})
    text = j.text.encode()
    r = lib.pyb_parse(text, len(text), j._source.encode())
    try:
        if r.status:
            raise BenchError(ffi.string(r.err).decode(errors="replace"), r.status)
    finally:
        lib.pyb_free(r)
