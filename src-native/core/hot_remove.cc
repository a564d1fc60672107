#include "core/hot_remove.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>

namespace nvmf {

namespace {

std::string dir_of(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

void wake(int fd) {
  uint64_t one = 1;
  ssize_t r = write(fd, &one, sizeof one);
  (void)r;  // a full counter still wakes the thread
}

}  // namespace

HotRemover::HotRemover(Handler h) : handler_(std::move(h)) {}

HotRemover::~HotRemover() { stop(); }

int HotRemover::start_locked() {
  if (thread_.joinable()) return 0;
  if (stopped_) return -ESHUTDOWN;
  ino_fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (ino_fd_ < 0) return -errno;
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  int rc = wake_fd_ < 0 ? -errno : 0;
  if (rc == 0) {
    try {
      thread_ = std::thread([this] { run(); });
    } catch (const std::system_error& e) {
      rc = -e.code().value();
    }
  }
  if (rc < 0) {
    close(ino_fd_);
    if (wake_fd_ >= 0) close(wake_fd_);
    ino_fd_ = wake_fd_ = -1;
  }
  return rc;
}

int HotRemover::watch(const std::shared_ptr<Bdev>& b) {
  const std::string& path = b->info().path;
  struct stat st {};
  if (stat(path.c_str(), &st) < 0) return -errno;
  const std::string dir = dir_of(path);
  std::lock_guard<std::mutex> g(mu_);
  int rc = start_locked();
  if (rc < 0) return rc;
  // Deleting or renaming the node (devtmpfs does it when the device goes)
  // and creating another in its place are what we look for.
  int wd = inotify_add_watch(ino_fd_, dir.c_str(), IN_DELETE | IN_MOVED_FROM | IN_CREATE | IN_MOVED_TO);
  if (wd < 0) return -errno;
  dirs_[wd] = dir;
  std::weak_ptr<Bdev> w = b;
  watched_.push_back(Watched{w, path, st.st_rdev, false});
  b->on_gone = [self = shared_from_this(), w](bool sure) { self->report(w, sure); };
  return 0;
}

void HotRemover::report(const std::weak_ptr<Bdev>& b, bool sure) {
  std::lock_guard<std::mutex> g(mu_);
  if (stopped_ || wake_fd_ < 0) return;
  reports_.push_back(Report{b, sure});
  wake(wake_fd_);
}

void HotRemover::stop() {
  std::thread t;
  {
    std::lock_guard<std::mutex> g(mu_);
    stopped_ = true;
    if (wake_fd_ >= 0) wake(wake_fd_);
    t = std::move(thread_);
  }
  if (t.joinable()) t.join();
  std::lock_guard<std::mutex> g(mu_);
  if (ino_fd_ >= 0) close(ino_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
  ino_fd_ = wake_fd_ = -1;
  watched_.clear();
  reports_.clear();
}

// A node that no longer exists, or now is another device, means the device
// we opened is gone (our fd still points at the old one).
bool HotRemover::node_gone(const Watched& w) const {
  struct stat st {};
  if (stat(w.path.c_str(), &st) < 0) return errno == ENOENT || errno == ENOTDIR;
  return !(S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) || st.st_rdev != w.rdev;
}

// Empties the inotify queue. Any event (or an overflow) means: look at
// every watched node; they are few and stat is cheap.
void HotRemover::drain_inotify(bool* check_all) {
  alignas(inotify_event) char buf[4096];
  while (true) {
    ssize_t n = read(ino_fd_, buf, sizeof buf);
    if (n <= 0) return;
    *check_all = true;
  }
}

void HotRemover::run() {
  while (true) {
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {ino_fd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) {
      fprintf(stderr, "nvmf-target: hot-remove watcher: poll: %s\n", strerror(errno));
      return;
    }
    uint64_t v;
    ssize_t r = read(wake_fd_, &v, sizeof v);
    (void)r;
    // What to look at, taken under the lock; the stat()s run outside it, so
    // a reactor reporting meanwhile never waits for a file system.
    struct Candidate {
      std::shared_ptr<Bdev> bdev;
      Watched w;
      bool sure;
    };
    std::vector<Candidate> cands;
    {
      std::lock_guard<std::mutex> g(mu_);
      if (stopped_) return;
      bool check_all = false;
      drain_inotify(&check_all);
      std::vector<Report> reports;
      reports.swap(reports_);
      for (auto it = watched_.begin(); it != watched_.end();) {
        std::shared_ptr<Bdev> b = it->bdev.lock();
        if (!b) {  // deleted
          it = watched_.erase(it);
          continue;
        }
        bool sure = false, check = check_all;
        for (auto& rep : reports) {
          if (rep.bdev.lock() != b) continue;
          sure = sure || rep.sure;
          check = true;
        }
        if (!it->removed && (sure || check)) cands.push_back(Candidate{std::move(b), *it, sure});
        ++it;
      }
    }
    std::vector<std::shared_ptr<Bdev>> gone;
    for (auto& c : cands) {
      if (c.sure || node_gone(c.w)) gone.push_back(std::move(c.bdev));
    }
    if (gone.empty()) continue;
    {
      std::lock_guard<std::mutex> g(mu_);
      for (auto& w : watched_) {
        for (auto& b : gone) {
          if (w.bdev.lock() == b) w.removed = true;
        }
      }
    }
    // Outside our lock: the handler takes the target's control lock, and a
    // control call may be adding a watch meanwhile.
    for (auto& b : gone) handler_(b);
  }
}

}  // namespace nvmf
