-- Services tenants register and retire: a retired service stays (its jobs name it)
-- but is no longer found; a tenant's live names are unique.
ALTER TABLE services ADD COLUMN retired boolean NOT NULL DEFAULT false;
CREATE UNIQUE INDEX services_live_name ON services (tenant, name)
    WHERE tenant IS NOT NULL AND NOT retired;
