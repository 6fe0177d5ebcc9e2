-- A tenant's design version: raised by the database itself whenever a row of the catalogue
-- (user_tables, user_fields) of that tenant is inserted, changed or deleted, whichever code
-- did it. Each node keeps the table designs it has read, tagged with this version; a request
-- reads the version with its session and re-reads a design only when the version moved.
ALTER TABLE tenants ADD COLUMN design_version BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION design_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tenant TEXT;
BEGIN
    IF TG_TABLE_NAME = 'user_tables' THEN
        IF TG_OP = 'DELETE' THEN tenant := OLD.tenant_id; ELSE tenant := NEW.tenant_id; END IF;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT tenant_id INTO tenant FROM user_tables WHERE id = OLD.table_id;
    ELSE
        SELECT tenant_id INTO tenant FROM user_tables WHERE id = NEW.table_id;
    END IF;
    UPDATE tenants SET design_version = design_version + 1 WHERE id = tenant;
    RETURN NULL;
END
$$;

CREATE TRIGGER user_tables_design AFTER INSERT OR UPDATE OR DELETE ON user_tables
    FOR EACH ROW EXECUTE FUNCTION design_changed();
CREATE TRIGGER user_fields_design AFTER INSERT OR UPDATE OR DELETE ON user_fields
    FOR EACH ROW EXECUTE FUNCTION design_changed();
