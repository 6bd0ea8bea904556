//! The fan-out load test: S subscribers follow T threads over server-sent events while a
//! writer posts W messages a second spread over those threads. It measures, for every event
//! each subscriber receives, the time from the write's acknowledgement to the receipt (an
//! event that arrives before its acknowledgement counts as 0), the events delivered a second,
//! every event lost or received twice, and the server's resident memory.
//!
//!   fanout --host URL[,URL...] [--write-host URL] [--subscribers 5000] [--threads 50]
//!          [--rate 100] [--seconds 30] [--thread-prefix P] [--server-pid PID] [--fail-on-loss]
//!
//! It speaks HTTP only. Every subscriber holds a connection of its own. With `--write-host`
//! the writes go to another replica (one sharing the store), so every event crosses the
//! transport between replicas; with several `--host` URLs the subscribers of each thread are
//! spread over them (subscriber `s` follows thread `s % threads` on host
//! `(s / threads) % hosts`). `--thread-prefix P` names the threads `P%012d` from 1 (as
//! `tools/bench-http` writes them) instead of ids of the run. `--rate 0` writes nothing: the
//! streams are held for `--seconds` while something else writes, and every event they receive
//! is counted. The last line is the run's figures as JSON (`fanout: json {...}`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use uuid::Uuid;

struct Args {
    host: String,
    write_host: Option<String>,
    thread_prefix: Option<String>,
    subscribers: usize,
    threads: usize,
    rate: u64,
    seconds: u64,
    server_pid: Option<u32>,
    fail_on_loss: bool,
}

fn args() -> anyhow::Result<Args> {
    let mut parsed = Args {
        host: "http://127.0.0.1:3000".into(),
        write_host: None,
        thread_prefix: None,
        subscribers: 5_000,
        threads: 50,
        rate: 100,
        seconds: 30,
        server_pid: None,
        fail_on_loss: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--host" => parsed.host = value()?,
            "--write-host" => parsed.write_host = Some(value()?),
            "--thread-prefix" => parsed.thread_prefix = Some(value()?),
            "--subscribers" => parsed.subscribers = value()?.parse()?,
            "--threads" => parsed.threads = value()?.parse()?,
            "--rate" => parsed.rate = value()?.parse()?,
            "--seconds" => parsed.seconds = value()?.parse()?,
            "--server-pid" => parsed.server_pid = Some(value()?.parse()?),
            "--fail-on-loss" => parsed.fail_on_loss = true,
            other => bail!("unknown flag {other}"),
        }
    }
    if parsed.threads == 0 || parsed.subscribers < parsed.threads {
        bail!("need threads >= 1 and subscribers >= threads");
    }
    Ok(parsed)
}

/// `http://host:port/prefix` → ("host:port", "/prefix").
fn split_host(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .context("--host must be an http:// URL")?;
    let (authority, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("/{}", prefix.trim_end_matches('/'))
    };
    Ok((authority.to_owned(), prefix))
}

/// What the run shares: when each write was acknowledged, and every receipt's latency.
struct Shared {
    started: Instant,
    /// Nanoseconds since `started` at which write `k` was acknowledged; 0 until then.
    acked: Vec<AtomicU64>,
    /// The thread each write went to.
    thread_of: Vec<AtomicUsize>,
    writes: AtomicUsize,
    delivered: AtomicU64,
    /// Every event received, whoever wrote it.
    events: AtomicU64,
}

/// What one subscriber saw: each write index it received, and how many times.
#[derive(Default)]
struct Seen {
    received: HashMap<usize, u32>,
    latencies_us: Vec<u32>,
}

async fn connect(
    authority: &str,
) -> anyhow::Result<hyper::client::conn::http1::SendRequest<Empty<Bytes>>> {
    let stream = TcpStream::connect(authority).await?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// Follows one thread until `stop`, recording every `fanout <k>` message it receives.
async fn subscribe(
    authority: String,
    path: String,
    shared: Arc<Shared>,
    seen: Arc<Mutex<Seen>>,
    ready: Arc<AtomicUsize>,
    stop: Arc<tokio::sync::Notify>,
) -> anyhow::Result<()> {
    let mut sender = connect(&authority).await?;
    let request = Request::get(&path)
        .header("host", &authority)
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    if !response.status().is_success() {
        bail!("stream answered {}", response.status());
    }
    ready.fetch_add(1, Ordering::Relaxed);
    let mut body = response.into_body();
    let mut buffer: Vec<u8> = Vec::with_capacity(4096);
    let stopped = stop.notified();
    tokio::pin!(stopped);
    loop {
        let frame = tokio::select! {
            frame = body.frame() => frame,
            () = &mut stopped => return Ok(()),
        };
        let Some(frame) = frame else {
            bail!("the stream ended")
        };
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        buffer.extend_from_slice(&data);
        while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = buffer.drain(..end + 2).collect();
            let at = shared.started.elapsed().as_nanos() as u64;
            if event.starts_with(b"id:") || event.windows(4).any(|w| w == b"\nid:") {
                shared.events.fetch_add(1, Ordering::Relaxed);
            }
            // Only created events carry a write: `"content":"fanout <k>"`.
            let Some(k) = find_write(&event) else {
                continue;
            };
            let acked = shared.acked.get(k).map_or(0, |a| a.load(Ordering::Acquire));
            let latency_us = if acked == 0 || at <= acked {
                0
            } else {
                ((at - acked) / 1_000).min(u64::from(u32::MAX)) as u32
            };
            let mut seen = seen.lock().await;
            *seen.received.entry(k).or_default() += 1;
            seen.latencies_us.push(latency_us);
            shared.delivered.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn find_write(event: &[u8]) -> Option<usize> {
    const MARK: &[u8] = b"\"content\":\"fanout ";
    let at = event.windows(MARK.len()).position(|w| w == MARK)? + MARK.len();
    let digits: &[u8] = &event[at..];
    let end = digits.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

/// Posts `rate` messages a second, round robin over the threads, until `until`.
async fn write(
    authority: String,
    paths: Vec<String>,
    rate: u64,
    until: Instant,
    shared: Arc<Shared>,
) -> anyhow::Result<()> {
    let user = Uuid::new_v4().to_string();
    let mut senders = Vec::new();
    for _ in 0..8 {
        let stream = TcpStream::connect(&authority).await?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        senders.push(Arc::new(Mutex::new(sender)));
    }
    let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut k = 0usize;
    let mut inflight = Vec::new();
    while Instant::now() < until && k < shared.acked.len() {
        tick.tick().await;
        let thread = k % paths.len();
        shared.thread_of[k].store(thread, Ordering::Relaxed);
        shared.writes.store(k + 1, Ordering::Release);
        let request = Request::post(&paths[thread])
            .header("host", &authority)
            .header("x-user-id", &user)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(format!(
                "{{\"content\":\"fanout {k}\"}}"
            ))))?;
        let sender = Arc::clone(&senders[k % senders.len()]);
        let shared = Arc::clone(&shared);
        inflight.push(tokio::spawn(async move {
            let response = sender.lock().await.send_request(request).await?;
            let status = response.status();
            let _ = response.into_body().collect().await;
            if status.as_u16() != 201 {
                bail!("write {k} answered {status}");
            }
            let at = shared.started.elapsed().as_nanos() as u64;
            shared.acked[k].store(at.max(1), Ordering::Release);
            Ok::<(), anyhow::Error>(())
        }));
        k += 1;
    }
    for task in inflight {
        task.await??;
    }
    Ok(())
}

fn rss_kb(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn percentile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    f64::from(sorted[i]) / 1_000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let hosts: Vec<(String, String)> = args
        .host
        .split(',')
        .map(split_host)
        .collect::<anyhow::Result<_>>()?;
    let first_host = args.host.split(',').next().unwrap_or_default().to_owned();
    let (write_authority, write_prefix) =
        split_host(args.write_host.as_ref().unwrap_or(&first_host))?;
    let run = Uuid::new_v4().simple().to_string();
    let threads: Vec<String> = (0..args.threads)
        .map(|i| match &args.thread_prefix {
            Some(prefix) => format!("{prefix}{:012}", i + 1),
            None => format!("{}-0000-7000-8000-{:012x}", &run[..8], i + 1),
        })
        .collect();
    let capacity = (args.rate * (args.seconds + 5)) as usize;
    let shared = Arc::new(Shared {
        started: Instant::now(),
        acked: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
        thread_of: (0..capacity)
            .map(|_| AtomicUsize::new(usize::MAX))
            .collect(),
        writes: AtomicUsize::new(0),
        delivered: AtomicU64::new(0),
        events: AtomicU64::new(0),
    });

    eprintln!(
        "fanout: opening {} streams over {} threads on {}, writing to {}",
        args.subscribers,
        args.threads,
        args.host,
        args.write_host.as_ref().unwrap_or(&first_host)
    );
    let ready = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(tokio::sync::Notify::new());
    let mut subscribers = Vec::with_capacity(args.subscribers);
    for s in 0..args.subscribers {
        let thread = s % args.threads;
        let (authority, prefix) = &hosts[(s / args.threads) % hosts.len()];
        let seen = Arc::new(Mutex::new(Seen::default()));
        let path = format!("{prefix}/threads/{}/events", threads[thread]);
        let task = tokio::spawn(subscribe(
            authority.clone(),
            path,
            Arc::clone(&shared),
            Arc::clone(&seen),
            Arc::clone(&ready),
            Arc::clone(&stop),
        ));
        subscribers.push((thread, seen, task));
        if s % 200 == 199 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let opening = Instant::now();
    while ready.load(Ordering::Relaxed) < args.subscribers {
        if opening.elapsed() > Duration::from_secs(60) {
            bail!(
                "only {} of {} streams opened within 60 s",
                ready.load(Ordering::Relaxed),
                args.subscribers
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "fanout: {} streams open after {:.1} s",
        args.subscribers,
        opening.elapsed().as_secs_f64()
    );

    let rss_before = args.server_pid.and_then(rss_kb);
    let peak_rss = Arc::new(AtomicU64::new(rss_before.unwrap_or(0)));
    if let Some(pid) = args.server_pid {
        let peak = Arc::clone(&peak_rss);
        tokio::spawn(async move {
            loop {
                if let Some(kb) = rss_kb(pid) {
                    peak.fetch_max(kb, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
    }
    let paths: Vec<String> = threads
        .iter()
        .map(|t| format!("{write_prefix}/threads/{t}/messages"))
        .collect();
    let write_start = Instant::now();
    let delivered_before = shared.delivered.load(Ordering::Relaxed);
    if args.rate == 0 {
        // Held while something else writes.
        let events_before = shared.events.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(args.seconds)).await;
        let events = shared.events.load(Ordering::Relaxed) - events_before;
        stop.notify_waiters();
        let failed = subscribers
            .iter()
            .filter(|(_, _, t)| t.is_finished())
            .count();
        println!(
            "fanout: {} streams held {} s, {events} events received, {failed} streams ended",
            args.subscribers, args.seconds
        );
        println!(
            "fanout: json {{\"streams\": {}, \"events\": {events}, \"failed\": {failed}}}",
            args.subscribers
        );
        return Ok(());
    }
    write(
        write_authority,
        paths,
        args.rate,
        write_start + Duration::from_secs(args.seconds),
        Arc::clone(&shared),
    )
    .await?;
    let writing = write_start.elapsed();
    // The last events in flight.
    let writes = shared.writes.load(Ordering::Acquire);
    let expected_total: u64 = (0..writes)
        .map(|k| {
            (args.subscribers / args.threads) as u64
                + u64::from(
                    (shared.thread_of[k].load(Ordering::Relaxed)) < args.subscribers % args.threads,
                )
        })
        .sum();
    let drain_until = Instant::now() + Duration::from_secs(10);
    while shared.delivered.load(Ordering::Relaxed) - delivered_before < expected_total
        && Instant::now() < drain_until
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = write_start.elapsed();
    stop.notify_waiters();

    let (mut lost, mut duplicated, mut failed) = (0u64, 0u64, 0usize);
    let mut latencies: Vec<u32> = Vec::new();
    for (thread, seen, task) in subscribers {
        if task.is_finished() {
            // A subscriber that ended early (its stream closed or failed).
            if let Ok(Err(error)) = task.await {
                failed += 1;
                if failed <= 3 {
                    eprintln!("fanout: a subscriber failed: {error:#}");
                }
            }
        } else {
            task.abort();
        }
        let seen = seen.lock().await;
        for k in 0..writes {
            if shared.thread_of[k].load(Ordering::Relaxed) != thread {
                continue;
            }
            match seen.received.get(&k) {
                None => lost += 1,
                Some(&n) if n > 1 => duplicated += u64::from(n - 1),
                Some(_) => {}
            }
        }
        latencies.extend_from_slice(&seen.latencies_us);
    }
    latencies.sort_unstable();
    let delivered = shared.delivered.load(Ordering::Relaxed) - delivered_before;
    let peak = peak_rss.load(Ordering::Relaxed);
    println!(
        "fanout: {} subscribers over {} threads, {} writes in {:.1} s ({:.0}/s)",
        args.subscribers,
        args.threads,
        writes,
        writing.as_secs_f64(),
        writes as f64 / writing.as_secs_f64()
    );
    println!(
        "fanout: {} events delivered ({:.0}/s), latency write acknowledged -> received: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        delivered,
        delivered as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
    println!("fanout: lost {lost}, duplicated {duplicated}, subscribers failed {failed}");
    println!(
        "fanout: json {{\"writes\": {writes}, \"delivered\": {delivered}, \"p50_ms\": {:.2}, \"p99_ms\": {:.2}, \"max_ms\": {:.2}, \"lost\": {lost}, \"duplicated\": {duplicated}, \"failed\": {failed}}}",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
    if let (Some(before), Some(pid)) = (rss_before, args.server_pid) {
        println!(
            "fanout: server resident memory {:.1} MiB with the streams open, peak {:.1} MiB, now {:.1} MiB",
            before as f64 / 1024.0,
            peak as f64 / 1024.0,
            rss_kb(pid).unwrap_or(0) as f64 / 1024.0
        );
    }
    if args.fail_on_loss && (lost > 0 || duplicated > 0 || failed > 0 || delivered == 0) {
        bail!("events were lost or duplicated, or subscribers failed");
    }
    Ok(())
}
