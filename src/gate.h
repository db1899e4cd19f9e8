/* The serving gate: whether this instance may hand out IDs now, and if not,
 * why. Consul's lock and state sync close and open it; the API reads it to
 * answer 503 and to report /health. "" means open. */
#ifndef GATE_H
#define GATE_H

#define GATE_REASON_MAX 400

/* The reason IDs are refused, or NULL when the gate is open. */
const char *gate_problem(void);
/* Opens the gate (reason NULL or "") or closes it with a reason; logs each
 * change once. Returns 1 when the state changed. */
int gate_set(const char *reason);

#endif
