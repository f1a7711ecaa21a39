#include "hubd/daemon.h"

int main(int argc, char **argv)
{
    return hub_daemon_main(argc, argv);
}
