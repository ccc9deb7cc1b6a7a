// Signal handling for daemons that run a KafkaStreams instance.
//
//   STREAMS_RETURN_IF_ERROR(InstallSignalHandlers());
//   STREAMS_RETURN_IF_ERROR(streams->Start());
//   while (!WaitForShutdownSignal(std::chrono::seconds(1))) {
//     if (streams->state() == KafkaStreams::State::kError) break;
//   }
//   Status stopped = streams->Stop();   // graceful drain
//
// The first SIGTERM or SIGINT only records the request (async-signal-safe: an
// atomic flag and a byte written to a self-pipe); the daemon then stops
// gracefully. A second one while stopping forces the process out at once with
// _exit(130).
//
// Thread safety: all functions are thread-safe; the handlers are process-wide.
#pragma once

#include <chrono>
#include <optional>

#include "streams/status.h"

namespace streams::runtime {

// Installs the SIGTERM and SIGINT handlers (idempotent). Errors: Internal when
// sigaction or the self-pipe cannot be set up.
Status InstallSignalHandlers();

// Returns true once a shutdown signal has been received (stays true).
bool ShutdownRequested();

// The number of the first shutdown signal received, if any.
std::optional<int> ShutdownSignal();

// Blocks until a shutdown signal arrives (true) or `timeout` passes (false).
// Returns true at once when one was already received.
bool WaitForShutdownSignal(std::chrono::milliseconds timeout);

// Records a shutdown request as if a signal had arrived (e.g. from an admin
// endpoint); the next signal then forces exit as a second signal would.
void RequestShutdown();

}  // namespace streams::runtime
