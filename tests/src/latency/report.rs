//! The table, the summary line and the percentiles behind them.

use super::measure::Measurement;
use v2m_shm_proto::protocol::ReadLag;

/// Nearest-rank percentile (`p` in 0..=100) of `values`; `None` when empty.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0 * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

/// The table's header.
pub fn header() -> String {
    format!(
        "{:<40} {:>6} {:>7} {:>10} {:>10} {:>9} {:>9} {:>10} {:>6}  text",
        "utterance",
        "stop+",
        "speech",
        "stop→fin",
        "end→fin",
        "1st prov",
        "prov int",
        "cap→wk99",
        "WER"
    )
}

fn opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{x:.0}"))
}

/// One row: times in ms, the utterance's own WER, what came back.
pub fn row(m: &Measurement) -> String {
    let wer = v2m_worker::eval::corpus_wer([(m.reference.as_str(), m.text.as_str())]);
    format!(
        "{:<40} {:>6} {:>7.0} {:>10.0} {:>10.0} {:>9} {:>9} {:>10} {:>5.1}%  {}",
        truncate(&m.utterance, 40),
        m.stop_delay_ms,
        m.speech_ms,
        m.stop_to_final_ms,
        m.speech_end_to_final_ms,
        opt(m.first_provisional_ms),
        opt(percentile(&m.provisional_intervals_ms, 50.0)),
        opt(m.capture_to_read.quantile_ms(0.99).map(f64::from)),
        wer * 100.0,
        if m.text.is_empty() {
            "(no speech detected)"
        } else {
            m.text.trim()
        }
    )
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let tail: String = s
            .chars()
            .rev()
            .take(n - 1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("…{tail}")
    }
}

/// The figures over a set of runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Runs.
    pub n: usize,
    /// Stop → final, median and 95th percentile.
    pub stop_to_final_p50_ms: f64,
    /// See above.
    pub stop_to_final_p95_ms: f64,
    /// Speech end → final, median.
    pub speech_end_to_final_p50_ms: f64,
    /// Onset → first provisional text, median over runs that had one.
    pub first_provisional_p50_ms: Option<f64>,
    /// Median gap between provisional events, over all runs' gaps.
    pub provisional_interval_p50_ms: Option<f64>,
    /// 99th percentile of capture → worker read over every live frame of every run.
    pub capture_to_worker_p99_ms: Option<f64>,
    /// Corpus word error rate, percent.
    pub wer_percent: f64,
}

/// Summarises `runs`; `None` when there are none.
pub fn summarize(runs: &[Measurement]) -> Option<Summary> {
    if runs.is_empty() {
        return None;
    }
    let pick = |f: fn(&Measurement) -> f64| runs.iter().map(f).collect::<Vec<_>>();
    let stop = pick(|m| m.stop_to_final_ms);
    let end = pick(|m| m.speech_end_to_final_ms);
    let first: Vec<f64> = runs.iter().filter_map(|m| m.first_provisional_ms).collect();
    let intervals: Vec<f64> = runs
        .iter()
        .flat_map(|m| m.provisional_intervals_ms.iter().copied())
        .collect();
    let mut lag = ReadLag::default();
    for m in runs {
        lag.merge(&m.capture_to_read);
    }
    let wer =
        v2m_worker::eval::corpus_wer(runs.iter().map(|m| (m.reference.as_str(), m.text.as_str())));
    Some(Summary {
        n: runs.len(),
        stop_to_final_p50_ms: percentile(&stop, 50.0)?,
        stop_to_final_p95_ms: percentile(&stop, 95.0)?,
        speech_end_to_final_p50_ms: percentile(&end, 50.0)?,
        first_provisional_p50_ms: percentile(&first, 50.0),
        provisional_interval_p50_ms: percentile(&intervals, 50.0),
        capture_to_worker_p99_ms: lag.quantile_ms(0.99).map(f64::from),
        wer_percent: wer * 100.0,
    })
}

impl Summary {
    /// The line scripts read: `latency: n=… wer=…%`.
    pub fn line(&self) -> String {
        format!(
            "latency: n={} stop_to_final_p50_ms={:.0} stop_to_final_p95_ms={:.0} first_provisional_p50_ms={} provisional_interval_p50_ms={} capture_to_worker_p99_ms={} wer={:.1}%",
            self.n,
            self.stop_to_final_p50_ms,
            self.stop_to_final_p95_ms,
            opt(self.first_provisional_p50_ms),
            opt(self.provisional_interval_p50_ms),
            opt(self.capture_to_worker_p99_ms),
            self.wer_percent
        )
    }
}

/// The line for the runs stopped `delay_ms` after speech:
/// `latency: delay_ms=… n=… stop_to_final_p50_ms=… stop_to_final_p95_ms=… first_provisional_p50_ms=… wer=…%`.
pub fn delay_line(delay_ms: u32, runs: &[Measurement]) -> Option<String> {
    let these: Vec<Measurement> = runs
        .iter()
        .filter(|m| m.stop_delay_ms == delay_ms)
        .cloned()
        .collect();
    let s = summarize(&these)?;
    Some(format!(
        "latency: delay_ms={delay_ms} n={} stop_to_final_p50_ms={:.0} stop_to_final_p95_ms={:.0} first_provisional_p50_ms={} wer={:.1}%",
        s.n,
        s.stop_to_final_p50_ms,
        s.stop_to_final_p95_ms,
        opt(s.first_provisional_p50_ms),
        s.wer_percent
    ))
}

/// Streaming finals against the same recordings transcribed offline.
#[derive(Debug, Clone, PartialEq)]
pub struct Streaming {
    /// Runs.
    pub n: usize,
    /// WER of the streaming finals, percent.
    pub wer_percent: f64,
    /// WER of the offline transcripts (each recording once), percent; `None` without them.
    pub offline_wer_percent: Option<f64>,
    /// Lowest and highest offline WER over the frame phases (the file's own and the shifted
    /// copies'): how far the offline figure itself moves with where the frames fall.
    pub offline_wer_by_phase: Option<(f64, f64)>,
    /// Median time of the worker's passes that produced finals (the floor of stop→final for a
    /// stop at the end of speech).
    pub final_pass_p50_ms: Option<f64>,
    /// Runs whose final was the speculative pass, ready before stop.
    pub speculative: usize,
}

/// Compares `runs` with their offline transcripts.
pub fn streaming(runs: &[Measurement]) -> Option<Streaming> {
    if runs.is_empty() {
        return None;
    }
    let mut seen = std::collections::HashSet::new();
    let recordings: Vec<&Measurement> = runs
        .iter()
        .filter(|m| seen.insert((m.set.as_str(), m.utterance.as_str())))
        .collect();
    let offline: Vec<(&str, &str)> = recordings
        .iter()
        .filter_map(|m| Some((m.reference.as_str(), m.offline.as_deref()?)))
        .collect();
    // Phases every recording has a transcript at: the file's own start (0) and the shifts.
    let phases = recordings
        .iter()
        .map(|m| match m.offline {
            Some(_) => 1 + m.offline_phases.len(),
            None => 0,
        })
        .min()
        .unwrap_or(0);
    let phase_wers: Vec<f64> = (0..phases)
        .map(|p| {
            100.0
                * v2m_worker::eval::corpus_wer(recordings.iter().map(|m| {
                    let text = match p {
                        0 => m.offline.as_deref().unwrap_or_default(),
                        p => m.offline_phases[p - 1].as_str(),
                    };
                    (m.reference.as_str(), text)
                }))
        })
        .collect();
    let passes: Vec<f64> = runs.iter().filter_map(|m| m.final_pass_ms).collect();
    Some(Streaming {
        n: runs.len(),
        wer_percent: 100.0
            * v2m_worker::eval::corpus_wer(
                runs.iter().map(|m| (m.reference.as_str(), m.text.as_str())),
            ),
        offline_wer_percent: (!offline.is_empty())
            .then(|| 100.0 * v2m_worker::eval::corpus_wer(offline)),
        offline_wer_by_phase: (phase_wers.len() > 1).then(|| {
            let min = phase_wers.iter().copied().fold(f64::INFINITY, f64::min);
            let max = phase_wers.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (min, max)
        }),
        final_pass_p50_ms: percentile(&passes, 50.0),
        speculative: runs.iter().filter(|m| m.speculative).count(),
    })
}

impl Streaming {
    fn offline(&self) -> String {
        self.offline_wer_percent
            .map_or("-".into(), |w| format!("{w:.1}%"))
    }

    /// ` offline_wer_phase_min=…% offline_wer_phase_max=…%`, or nothing without the shifted
    /// transcripts.
    fn by_phase(&self) -> String {
        self.offline_wer_by_phase.map_or(String::new(), |(lo, hi)| {
            format!(" offline_wer_phase_min={lo:.1}% offline_wer_phase_max={hi:.1}%")
        })
    }

    /// `streaming: n=… wer=…% offline_wer=…% final_pass_p50_ms=… [offline_wer_phase_min=…% offline_wer_phase_max=…%]`
    pub fn line(&self) -> String {
        format!(
            "streaming: n={} wer={:.1}% offline_wer={} final_pass_p50_ms={}{}",
            self.n,
            self.wer_percent,
            self.offline(),
            opt(self.final_pass_p50_ms),
            self.by_phase()
        )
    }

    /// `set: name=… n=… wer=…% offline_wer=…% speculative=… [offline_wer_phase_min=…% offline_wer_phase_max=…%]`
    pub fn set_line(&self, name: &str) -> String {
        format!(
            "set: name={name} n={} wer={:.1}% offline_wer={} speculative={}{}",
            self.n,
            self.wer_percent,
            self.offline(),
            self.speculative,
            self.by_phase()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stop: f64, first: Option<f64>, lag_ms: &[u64], text: &str) -> Measurement {
        let mut capture_to_read = ReadLag::default();
        for &l in lag_ms {
            capture_to_read.record(l * 1_000_000);
        }
        Measurement {
            set: "s".into(),
            utterance: "u".into(),
            stop_delay_ms: 0,
            speech_ms: 1000.0,
            stop_to_final_ms: stop,
            speech_end_to_final_ms: stop + 10.0,
            first_provisional_ms: first,
            provisional_intervals_ms: vec![stop / 2.0],
            capture_to_read,
            reference: "ten of clubs".into(),
            text: text.into(),
            final_pass_ms: Some(stop / 2.0),
            speculative: stop < 150.0,
            offline: Some("ten of clubs".into()),
            offline_phases: Vec::new(),
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 95.0), Some(95.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn the_summary_pools_every_run() {
        let runs = [
            run(100.0, Some(600.0), &[30, 30, 30], "ten of clubs"),
            run(300.0, None, &[40, 500], "ten of hearts"),
            run(200.0, Some(800.0), &[35], "ten of clubs"),
        ];
        let s = summarize(&runs).unwrap();
        assert_eq!(s.n, 3);
        assert_eq!(s.stop_to_final_p50_ms, 200.0);
        assert_eq!(s.stop_to_final_p95_ms, 300.0);
        assert_eq!(s.first_provisional_p50_ms, Some(600.0));
        assert_eq!(s.provisional_interval_p50_ms, Some(100.0));
        // 6 frames: the 99th percentile is the slowest one's bucket (500..501 ms).
        assert_eq!(s.capture_to_worker_p99_ms, Some(501.0));
        assert!((s.wer_percent - 100.0 / 9.0).abs() < 1e-9);
        assert!(
            s.line()
                .starts_with("latency: n=3 stop_to_final_p50_ms=200 ")
        );
        assert!(s.line().ends_with("capture_to_worker_p99_ms=501 wer=11.1%"));
        assert_eq!(summarize(&[]), None);
    }

    #[test]
    fn delays_and_offline_get_their_own_lines() {
        let mut runs = vec![
            run(100.0, Some(600.0), &[30], "ten of clubs"),
            run(300.0, None, &[40], "ten of hearts"),
            run(200.0, Some(800.0), &[35], "ten of clubs"),
        ];
        runs[1].stop_delay_ms = 500;
        runs[2].utterance = "v".into();
        runs[2].offline = Some("ten of spades".into());
        assert_eq!(
            delay_line(0, &runs).unwrap(),
            "latency: delay_ms=0 n=2 stop_to_final_p50_ms=100 stop_to_final_p95_ms=200 first_provisional_p50_ms=600 wer=0.0%"
        );
        assert_eq!(delay_line(1000, &runs), None);
        let s = streaming(&runs).unwrap();
        // Offline: each recording once ("u" twice among the runs): 1 error in 6 words.
        assert_eq!(
            s.line(),
            "streaming: n=3 wer=11.1% offline_wer=16.7% final_pass_p50_ms=100"
        );
        assert_eq!(s.speculative, 1);
        assert!(s.set_line("s").starts_with("set: name=s n=3 "));
        assert!(!s.line().contains("phase"));
    }

    #[test]
    fn the_offline_wer_spread_over_frame_phases_is_printed_beside_it() {
        let mut runs = vec![
            run(100.0, None, &[30], "ten of clubs"),
            run(100.0, None, &[30], "ten of clubs"),
            run(100.0, None, &[30], "seven of hearts"),
        ];
        runs[1].stop_delay_ms = 500;
        runs[2].utterance = "v".into();
        runs[2].reference = "seven of hearts".into();
        runs[2].offline = Some("seven of hearts".into());
        // Phase 5 ms misreads one word of "u", phase 10 ms two of "v".
        for m in &mut runs[..2] {
            m.offline_phases = vec!["ten of clothes".into(), "ten of clubs".into()];
        }
        runs[2].offline_phases = vec!["seven of hearts".into(), "eleven hearts".into()];
        let s = streaming(&runs).unwrap();
        assert_eq!(s.offline_wer_percent, Some(0.0));
        let (lo, hi) = s.offline_wer_by_phase.unwrap();
        assert_eq!(lo, 0.0);
        assert!((hi - 100.0 / 3.0).abs() < 1e-9, "{hi}");
        assert!(
            s.line()
                .ends_with(" offline_wer_phase_min=0.0% offline_wer_phase_max=33.3%"),
            "{}",
            s.line()
        );
        assert!(
            s.set_line("s")
                .ends_with(" offline_wer_phase_min=0.0% offline_wer_phase_max=33.3%")
        );
        // A recording without the shifted transcripts: no spread to show.
        runs[2].offline_phases.clear();
        assert_eq!(streaming(&runs).unwrap().offline_wer_by_phase, None);
    }
}
