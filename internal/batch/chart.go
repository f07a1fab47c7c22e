package batch

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// chart is the throughput series laid out as an SVG drawing, computed here
// so that the page needs no script to show it: bytes per second as a
// filled step line against the left axis, messages per second as a dashed
// step line against the right one.
type chart struct {
	Width, Height            float64 // the viewBox
	Left, Right, Top, Bottom float64 // the plot area's edges
	TickEnd                  float64 // where the time axis's marks end, below Bottom
	BytesLine, BytesArea     string  // points of the polyline and polygon
	MessagesLine             string
	BytesTicks, MsgTicks     []tick // Pos is a y coordinate
	TimeTicks                []tick // Pos is an x coordinate
	Points                   int
	Bucket                   string // the bucket width, as "5m0s"
}

// tick is one labelled mark on an axis.
type tick struct {
	Pos   float64
	Label string
}

// newChart lays out s.Throughput, or returns nil when there is none.
func newChart(s *Summary) *chart {
	pts := s.Throughput
	if len(pts) == 0 || s.BucketSeconds <= 0 {
		return nil
	}
	c := &chart{Width: 720, Height: 260, Left: 78, Right: 720 - 70, Top: 12, Bottom: 260 - 32, TickEnd: 260 - 27,
		Points: len(pts), Bucket: formatDuration(time.Duration(s.BucketSeconds * float64(time.Second)))}
	var maxBytes, maxMsgs float64
	for _, p := range pts {
		maxBytes = math.Max(maxBytes, p.BytesPerSecond)
		maxMsgs = math.Max(maxMsgs, p.MessagesPerSecond)
	}
	bytesTop, bytesTicks := axis(maxBytes, []string{"B/s", "KiB/s", "MiB/s", "GiB/s", "TiB/s"}, 1024)
	msgsTop, msgsTicks := axis(maxMsgs, []string{"msg/s"}, 0)
	c.BytesTicks = c.yTicks(bytesTop, bytesTicks)
	c.MsgTicks = c.yTicks(msgsTop, msgsTicks)

	step := (c.Right - c.Left) / float64(len(pts))
	bytesY := make([]float64, len(pts))
	msgsY := make([]float64, len(pts))
	for i, p := range pts {
		bytesY[i], msgsY[i] = c.y(p.BytesPerSecond, bytesTop), c.y(p.MessagesPerSecond, msgsTop)
	}
	c.BytesLine = c.steps(bytesY, step)
	c.MessagesLine = c.steps(msgsY, step)
	c.BytesArea = point(c.Left, c.Bottom) + " " + c.BytesLine + " " + point(c.Right, c.Bottom)

	// At most six time labels, on bucket edges, with the date only when
	// the batch spans more than one day.
	layout := "15:04"
	first, last := pts[0].Start, pts[len(pts)-1].Start
	if first.YearDay() != last.YearDay() || first.Year() != last.Year() {
		layout = "Jan 2 15:04"
	}
	every := (len(pts) + 4) / 5
	for i := 0; i <= len(pts); i += every {
		t := pts[0].Start.Add(time.Duration(float64(i) * s.BucketSeconds * float64(time.Second)))
		c.TimeTicks = append(c.TimeTicks, tick{Pos: round1(c.Left + float64(i)*step), Label: t.Format(layout)})
	}
	return c
}

// y is the coordinate of v on an axis whose top is top.
func (c *chart) y(v, top float64) float64 {
	return round1(c.Bottom - (c.Bottom-c.Top)*v/top)
}

func (c *chart) yTicks(top float64, ticks []tick) []tick {
	for i := range ticks {
		ticks[i].Pos = c.y(ticks[i].Pos, top)
	}
	return ticks
}

// steps draws values ys, one per bucket of width step from the left
// edge, as a step line: level across each bucket, vertical where the
// value changes.
func (c *chart) steps(ys []float64, step float64) string {
	pts := []string{point(c.Left, ys[0])}
	for i := 1; i < len(ys); i++ {
		if ys[i] != ys[i-1] {
			x := c.Left + float64(i)*step
			pts = append(pts, point(x, ys[i-1]), point(x, ys[i]))
		}
	}
	pts = append(pts, point(c.Right, ys[len(ys)-1]))
	return strings.Join(pts, " ")
}

// point writes a coordinate pair of an SVG points attribute.
func point(x, y float64) string {
	return strconv.FormatFloat(x, 'f', 1, 64) + "," + strconv.FormatFloat(y, 'f', 1, 64)
}

// round1 rounds a coordinate to a tenth, which is finer than any screen
// shows the 720-wide drawing, and keeps the page free of 65.99999999999997.
func round1(v float64) float64 { return math.Round(v*10) / 10 }

// axis chooses a scale for values up to maxV: a unit from units (each
// base times the one before; base 0 means one unit only), a round step of
// 1, 2 or 5 times a power of ten in that unit, and a top that is a whole
// number of steps. It returns the top and the ticks, whose Pos is the
// value they stand for.
func axis(maxV float64, units []string, base float64) (float64, []tick) {
	unit, scale := 0, 1.0
	for base > 0 && unit+1 < len(units) && maxV/scale >= base {
		unit++
		scale *= base
	}
	v := maxV / scale
	step := roundStep(v / 4)
	top := step * math.Max(1, math.Ceil(v/step-1e-9))
	decimals := 0
	if step < 1 {
		decimals = int(math.Ceil(-math.Log10(step) - 1e-9))
	}
	var ticks []tick
	for i := 0.0; i*step <= top+step/2; i++ {
		label := strconv.FormatFloat(i*step, 'f', decimals, 64) + " " + units[unit]
		ticks = append(ticks, tick{Pos: i * step * scale, Label: label})
	}
	return top * scale, ticks
}

// roundStep is the least of 1, 2 and 5 times a power of ten that is at
// least x; 1 for x of zero or less.
func roundStep(x float64) float64 {
	if x <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= x*(1-1e-9) {
			return m * p
		}
	}
	return 10 * p
}
