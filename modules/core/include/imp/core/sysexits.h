#pragma once
// Process exit codes shared by impd and impctl (sysexits.h values).
namespace imp::core::exitcode {
constexpr int kOk = 0;
constexpr int kRefused = 1;       // impctl: the server refused the request
constexpr int kUsage = 64;        // EX_USAGE
constexpr int kUnavailable = 69;  // EX_UNAVAILABLE
constexpr int kSoftware = 70;     // EX_SOFTWARE
constexpr int kOsErr = 71;        // EX_OSERR
constexpr int kIoErr = 74;        // EX_IOERR
constexpr int kNoPerm = 77;       // EX_NOPERM
constexpr int kConfig = 78;       // EX_CONFIG
}  // namespace imp::core::exitcode
