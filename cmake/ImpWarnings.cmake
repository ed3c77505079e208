# Project-wide warning flags, applied per target with imp_target_warnings().
function(imp_target_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic $<$<CXX_COMPILER_ID:GNU>:-Wshadow=local> -Wnon-virtual-dtor -Wno-missing-field-initializers)
  if(IMP_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
