package worker

// Crash stops the client as a killed process would stop, except that
// handlers already running go on and try to record their results.
func (c *Client) Crash() { c.crash() }

// FetchNow makes the named queue fetch once, now, and reports how many
// jobs it started (-1 if the queue does not fetch or the client stopped).
func (c *Client) FetchNow(queue string) int {
	for _, qs := range c.queues {
		if qs.name != queue {
			continue
		}
		reply := make(chan int, 1)
		select {
		case qs.fetchReq <- reply:
			return <-reply
		case <-c.stopFetch:
			return -1
		}
	}
	return -1
}

// Latest exposes the catch-up arithmetic of periodic jobs.
var Latest = latest
