package worker

import (
	"context"
	"time"

	"github.com/ordo-sched/ordo/driver"
)

// maxRollupsPerRound bounds the rollup transactions of one maintenance
// round: each records at most driver.DefaultActivitySpan (an hour), so a
// round catches up a whole DefaultActivityBackfill (a day), as the first
// round after an upgrade must, in short transactions.
const maxRollupsPerRound = 24

// rollupActivity records the minutes of activity that have settled
// (driver.Insights.RollupActivity: the dashboard's charts). The round
// does it before it prunes finished jobs, so that a minute is recorded
// while its jobs are still there. A new minute settles once a minute;
// until then the round skips the database.
func (c *Client) rollupActivity(ctx context.Context, now time.Time) {
	if now.Before(c.rollupDue) {
		return
	}
	settled := driver.MinuteOf(now.Add(-driver.DefaultActivitySettle))
	for range maxRollupsPerRound {
		res, err := c.q.Backend().RollupActivity(ctx, driver.RollupParams{Now: now})
		if err != nil {
			if ctx.Err() == nil {
				c.log.Error("worker: recording the activity of the last minutes failed; trying again next round", "error", err)
			}
			return
		}
		// The minute after the watermark settles DefaultActivitySettle
		// after it ends.
		c.rollupDue = res.Until.Add(time.Minute + driver.DefaultActivitySettle)
		if !res.Until.Before(settled) || res.From.Equal(res.Until) {
			return
		}
	}
}
