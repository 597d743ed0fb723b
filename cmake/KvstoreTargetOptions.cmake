# Compile options for kvstore's own programs (tests, examples, benchmarks);
# never applied to consumers of the library.

function(kvstore_target_options target)
  set_target_properties(${target} PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON CXX_EXTENSIONS OFF)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
  if(KVSTORE_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(KVSTORE_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${KVSTORE_SANITIZE} -fno-omit-frame-pointer
                                             -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=${KVSTORE_SANITIZE})
  endif()
endfunction()
