# Writes a file from impctl's command registry (issue 15 deliverable 4):
#   cmake -DIMPCTL=<impctl> -DMODE=man -DIN=<impctl.8.in> -DOUT=<impctl.8> -P ImpctlGenerated.cmake
#   cmake -DIMPCTL=<impctl> -DMODE=completion -DOUT=<file> -P ImpctlGenerated.cmake
# man: impctl.8.in with @IMPCTL_COMMANDS@ replaced by `impctl --man-commands`.
# completion: `impctl completion bash`.
if(MODE STREQUAL "man")
  set(_args --man-commands)
elseif(MODE STREQUAL "completion")
  set(_args completion bash)
else()
  message(FATAL_ERROR "ImpctlGenerated.cmake: MODE must be man or completion, not '${MODE}'")
endif()
execute_process(COMMAND "${IMPCTL}" ${_args} OUTPUT_VARIABLE _out ERROR_VARIABLE _err RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0 OR _out STREQUAL "")
  message(FATAL_ERROR "${IMPCTL} ${_args} failed (${_rc}): ${_err}")
endif()
if(MODE STREQUAL "man")
  file(READ "${IN}" _page)
  string(FIND "${_page}" "@IMPCTL_COMMANDS@" _at)
  if(_at EQUAL -1)
    message(FATAL_ERROR "${IN} has no @IMPCTL_COMMANDS@ line")
  endif()
  string(REPLACE "@IMPCTL_COMMANDS@\n" "${_out}" _page "${_page}")
  set(_out "${_page}")
endif()
file(WRITE "${OUT}.tmp" "${_out}")
file(RENAME "${OUT}.tmp" "${OUT}")
