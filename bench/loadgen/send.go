package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// result is one request: when it was due, sent and answered (unix ns), its HTTP status
// (0: no answer, -1: not sent because -max-inflight requests were already waiting) and
// the id it carries (Open311's service_request_id from the answer, or the alert's id).
type result struct {
	sched, sent, ack int64
	status           int
	id               string
}

type point struct{ code, lat, lon string }

type sender struct {
	kind, target, apiKey, idPrefix string
	points                         []point
	first                          int // the index of the first point this run sends
	client                         *http.Client
}

func readPoints(path string) ([]point, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var pts []point
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Fields(sc.Text())
		if len(parts) == 3 {
			pts = append(pts, point{parts[0], parts[1], parts[2]})
		}
	}
	if len(pts) == 0 {
		return nil, fmt.Errorf("%s: no 'service_code lat lon' lines", path)
	}
	return pts, sc.Err()
}

// request builds request number seq: reports cycle through the points from the first
// (many grids, so work orders differ); each alert carries a unique id label, its own group.
func (s *sender) request(ctx context.Context, seq int) (*http.Request, string, error) {
	var body []byte
	var ctype, id string
	switch s.kind {
	case "open311":
		p := s.points[(s.first+seq)%len(s.points)]
		body = []byte(url.Values{
			"api_key": {s.apiKey}, "service_code": {p.code}, "lat": {p.lat}, "long": {p.lon},
			"description": {"bench: 路边垃圾 rubbish by the road"},
		}.Encode())
		ctype = "application/x-www-form-urlencoded"
	case "alertmanager":
		id = fmt.Sprintf("%s-%d", s.idPrefix, seq)
		alert := []map[string]any{{
			"labels":      map[string]string{"alertname": "GridlineBench", "id": id},
			"annotations": map[string]string{"summary": "bench: 路边垃圾 rubbish by the road"},
			"startsAt":    time.Now().UTC().Format(time.RFC3339Nano),
		}}
		body, _ = json.Marshal(alert)
		ctype = "application/json"
	default:
		return nil, "", fmt.Errorf("unknown -kind %q", s.kind)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.target, bytes.NewReader(body))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Content-Type", ctype)
	return req, id, nil
}

func (s *sender) do(ctx context.Context, seq int, sched int64) result {
	req, id, err := s.request(ctx, seq)
	r := result{sched: sched, sent: time.Now().UnixNano(), id: id}
	if err != nil {
		r.ack = r.sent
		return r
	}
	resp, err := s.client.Do(req)
	if err != nil {
		r.ack = time.Now().UnixNano()
		return r
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	r.ack, r.status = time.Now().UnixNano(), resp.StatusCode
	if s.kind == "open311" && resp.StatusCode/100 == 2 {
		var created []struct {
			ID string `json:"service_request_id"`
		}
		if json.Unmarshal(answer, &created) == nil && len(created) == 1 {
			r.id = created[0].ID
		}
	}
	return r
}

func send(argv []string) error {
	fs := flag.NewFlagSet("send", flag.ExitOnError)
	target := fs.String("url", "", "where to POST (http://127.0.0.1:PORT/path)")
	kind := fs.String("kind", "open311", "open311 or alertmanager")
	rate := fs.Float64("rate", 100, "requests per second, open loop; 0: closed loop, as fast as possible")
	seconds := fs.Float64("seconds", 10, "how long to send")
	concurrency := fs.Int("concurrency", 128, "closed loop: requests kept in flight")
	maxInflight := fs.Int("max-inflight", 1024, "open loop: requests waiting at once; a request due beyond that is not sent, and counted")
	pointsPath := fs.String("points", "", "open311: file of 'service_code lat lon' lines")
	first := fs.Int("first", 0, "open311: the index of the first point (a run continues where the last stopped)")
	idPrefix := fs.String("id-prefix", "bench", "alertmanager: prefix of the alerts' id label")
	timeout := fs.Duration("timeout", 30*time.Second, "per request")
	grace := fs.Duration("grace", 30*time.Second, "after the last send, how long to wait for answers")
	out := fs.String("out", "", "TSV file: seq, due, sent, answered (unix ns), status, id")
	fs.Parse(argv)

	u, err := url.Parse(*target)
	if err != nil || u.Scheme != "http" {
		return fmt.Errorf("-url must be http://127.0.0.1:PORT/..., got %q", *target)
	}
	if err := loopbackOnly(u.Host); err != nil {
		return err
	}
	if *seconds <= 0 || *seconds > 600 || *rate < 0 || *rate > 100_000 {
		return fmt.Errorf("bounded runs only: 0 < -seconds <= 600, 0 <= -rate <= 100000")
	}
	conns := *maxInflight
	if *rate == 0 {
		conns = *concurrency
	}
	s := &sender{kind: *kind, target: *target, apiKey: os.Getenv("BENCH_API_KEY"), idPrefix: *idPrefix, first: *first}
	if *kind == "open311" {
		if s.points, err = readPoints(*pointsPath); err != nil {
			return err
		}
	}
	s.client = &http.Client{Timeout: *timeout, Transport: &http.Transport{
		MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns,
		IdleConnTimeout: 90 * time.Second, DisableCompression: true,
	}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var results []result
	if *rate > 0 {
		results = openLoop(ctx, cancel, s, *rate, *seconds, *maxInflight, *grace)
	} else {
		results = closedLoop(ctx, s, *seconds, *concurrency)
	}
	return writeResults(*out, results)
}

// openLoop sends request i at start + i/rate whatever the answers: a goroutine per request,
// at most maxInflight waiting; one due while that many wait is recorded as not sent.
func openLoop(ctx context.Context, cancel context.CancelFunc, s *sender, rate, seconds float64,
	maxInflight int, grace time.Duration) []result {
	total := int(rate * seconds)
	results := make([]result, total)
	slots := make(chan struct{}, maxInflight)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < total; i++ {
		due := start.Add(time.Duration(float64(i) * float64(time.Second) / rate))
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		select {
		case slots <- struct{}{}:
			wg.Add(1)
			go func(i int, due int64) {
				defer func() { <-slots; wg.Done() }()
				results[i] = s.do(ctx, i, due)
			}(i, due.UnixNano())
		default:
			results[i] = result{sched: due.UnixNano(), status: -1}
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		cancel() // bounded: whatever is still unanswered now counts as no answer
		<-done
	}
	return results
}

// closedLoop keeps `concurrency` requests in flight for `seconds`: as fast as possible.
func closedLoop(ctx context.Context, s *sender, seconds float64, concurrency int) []result {
	deadline := time.Now().Add(time.Duration(seconds * float64(time.Second)))
	var mu sync.Mutex
	var seq int
	var results []result
	var wg sync.WaitGroup
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				mu.Lock()
				i := seq
				seq++
				mu.Unlock()
				r := s.do(ctx, i, time.Now().UnixNano())
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return results
}

func writeResults(path string, results []result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	ok, sent := 0, 0
	for i, r := range results {
		if r.status != -1 {
			sent++
		}
		if r.status/100 == 2 {
			ok++
		}
		fmt.Fprintf(w, "%d\t%d\t%d\t%d\t%d\t%s\n", i, r.sched, r.sent, r.ack, r.status, r.id)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Printf("loadgen: %d due, %d sent, %d answered 2xx\n", len(results), sent, ok)
	return f.Close()
}
