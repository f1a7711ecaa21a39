/* The provisioning service API: being written (placeholder so the tree builds). */
#include "http/http_int.h"

int hub_http__route_dps_service(struct hub_http_request *r)
{
    (void)r;
    return 0;
}
