# A consumer built with pkg-config's flags alone: cmake -DCXX=... -DSTANDARD=17
# -DPREFIX=<install prefix> -DSOURCE=consumer.cpp -DOUTPUT=<binary> -P pkg-config.cmake
set(ENV{PKG_CONFIG_PATH} "${PREFIX}/share/pkgconfig")
execute_process(COMMAND pkg-config --cflags --libs kvstore
                OUTPUT_VARIABLE flags OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE failed)
if(failed)
  message(FATAL_ERROR "pkg-config does not know kvstore under ${PREFIX}/share/pkgconfig")
endif()
separate_arguments(flags UNIX_COMMAND "${flags}")
execute_process(COMMAND ${CXX} -std=c++${STANDARD} -Wall -Wextra -Wpedantic -Werror ${SOURCE} ${flags} -o ${OUTPUT}
                RESULT_VARIABLE failed)
if(failed)
  message(FATAL_ERROR "the pkg-config consumer does not compile in C++${STANDARD}")
endif()
execute_process(COMMAND ${OUTPUT} RESULT_VARIABLE failed)
if(failed)
  message(FATAL_ERROR "the pkg-config consumer failed")
endif()
