// HostController admin helpers built from Get Log Page: reads split to
// respect MDTS, and the discovery log read until its generation counter is
// stable (records may change between the commands of one read).
#include <cstring>
#include <memory>

#include "host/controller.h"
#include "host/discovery_log.h"

namespace nvmf::host {

namespace {

struct LogJob {
  HostController* ctrl;
  uint8_t lid;
  uint8_t lsp;
  uint64_t offset;
  uint32_t nsid;
  uint8_t* buf;
  uint32_t len;
  uint32_t done_bytes = 0;
  HostController::DoneFn done;
};

void log_step(const std::shared_ptr<LogJob>& j) {
  uint32_t chunk = j->len - j->done_bytes;
  uint64_t mx = j->ctrl->max_transfer();
  if (mx != 0 && chunk > mx) chunk = uint32_t(mx);  // MDTS is a power of two >= 4 KiB
  HostCmd c;
  c.sqe = make_get_log_page(j->lid, chunk, j->offset + j->done_bytes, j->nsid, j->lsp);
  c.data = j->buf + j->done_bytes;
  c.len = chunk;
  c.dir = XferDir::C2H;
  j->ctrl->exec(0, c, [j, chunk, sqe = c.sqe](const HostCompletion& hc) {
    HostError e = HostController::error_of(0, sqe, hc);
    if (!e.ok()) {
      j->done(e);
      return;
    }
    j->done_bytes += chunk;
    if (j->done_bytes == j->len) {
      j->done(HostError{});
    } else {
      log_step(j);
    }
  });
}

struct DiscoveryJob {
  HostController* ctrl;
  std::vector<uint8_t> hdr;
  std::vector<uint8_t> log;
  int tries = 0;
  HostController::LogFn done;
};

void discovery_step(const std::shared_ptr<DiscoveryJob>& j) {
  j->hdr.assign(sizeof(DiscoveryLogHeader), 0);
  j->ctrl->get_log_page(uint8_t(LogId::Discovery), 0, 0, 0, j->hdr.data(), uint32_t(j->hdr.size()),
                        [j](const HostError& e) {
    if (!e.ok()) {
      j->done(e, {});
      return;
    }
    DiscoveryLogHeader h;
    std::memcpy(&h, j->hdr.data(), sizeof h);
    if (h.numrec > kMaxDiscoveryRecords) {
      j->done(HostError::io(j->ctrl->options().target + ": discovery log claims " +
                            std::to_string(h.numrec) + " records (at most " +
                            std::to_string(kMaxDiscoveryRecords) + " are read)"),
              {});
      return;
    }
    j->log.assign(sizeof(DiscoveryLogHeader) + size_t(h.numrec) * sizeof(DiscoveryLogEntry), 0);
    j->ctrl->get_log_page(uint8_t(LogId::Discovery), 0, 0, 0, j->log.data(), uint32_t(j->log.size()),
                          [j, numrec = h.numrec](const HostError& e2) {
      if (!e2.ok()) {
        j->done(e2, {});
        return;
      }
      // Re-read the header: the page is consistent if nothing changed
      // between the start of the full read and now.
      DiscoveryLogHeader full;
      std::memcpy(&full, j->log.data(), sizeof full);
      j->hdr.assign(sizeof(DiscoveryLogHeader), 0);
      j->ctrl->get_log_page(uint8_t(LogId::Discovery), 0, 0, 0, j->hdr.data(), uint32_t(j->hdr.size()),
                            [j, numrec, genctr = full.genctr, full_numrec = full.numrec](const HostError& e3) {
        if (!e3.ok()) {
          j->done(e3, {});
          return;
        }
        DiscoveryLogHeader again;
        std::memcpy(&again, j->hdr.data(), sizeof again);
        if (again.genctr == genctr && again.numrec == numrec && full_numrec == numrec) {
          j->done(HostError{}, std::move(j->log));
          return;
        }
        if (++j->tries >= 10) {
          j->done(HostError::io(j->ctrl->options().target +
                                ": discovery log kept changing while being read"),
                  {});
          return;
        }
        discovery_step(j);
      });
    });
  });
}

}  // namespace

void HostController::get_log_page(uint8_t lid, uint8_t lsp, uint64_t offset, uint32_t nsid,
                                  uint8_t* buf, uint32_t len, DoneFn done) {
  if (len == 0 || len % 4 != 0 || offset % 4 != 0) {
    done(HostError::invalid("Get Log Page: length and offset must be multiples of 4 (length > 0)"));
    return;
  }
  auto j = std::make_shared<LogJob>();
  j->ctrl = this;
  j->lid = lid;
  j->lsp = lsp;
  j->offset = offset;
  j->nsid = nsid;
  j->buf = buf;
  j->len = len;
  j->done = std::move(done);
  log_step(j);
}

void HostController::read_discovery_log(LogFn done) {
  auto j = std::make_shared<DiscoveryJob>();
  j->ctrl = this;
  j->done = std::move(done);
  discovery_step(j);
}

}  // namespace nvmf::host
